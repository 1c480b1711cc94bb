"""Staff login: brute force is locked out per username and IP (django-axes); no public password reset."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN_PAGES = {
    "/accounts/login/": {"next": "/dashboard/"},
    "/admin/login/": {"next": "/admin/"},
}
PASSWORD = "correct-horse-battery"


def attempt(page: str, username: str, password: str, *, ip: str = "203.0.113.7") -> Any:
    client = Client(REMOTE_ADDR=ip)
    return client.post(page, {"username": username, "password": password, **LOGIN_PAGES[page]})


def logged_in(response: Any) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_a_correct_password_logs_staff_in(staff_user: Any, page: str) -> None:
    assert logged_in(attempt(page, "agent", PASSWORD))


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_too_many_failures_lock_the_account_from_that_ip_even_for_the_right_password(
    staff_user: Any, page: str
) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert attempt(page, "agent", "wrong-guess").status_code == 200  # the form again, with its error
    locked = attempt(page, "agent", "wrong-guess")
    assert locked.status_code in (403, 429)
    assert b"locked" in locked.content.lower()

    refused = attempt(page, "agent", PASSWORD)
    assert refused.status_code in (403, 429)
    assert not logged_in(refused)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_lock_is_per_username_and_ip_so_others_still_log_in(staff_user: Any, other_staff: Any, page: str) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(page, "agent", "wrong-guess")
    assert logged_in(attempt(page, "lead", PASSWORD))  # another account, same IP
    assert logged_in(attempt(page, "agent", PASSWORD, ip="198.51.100.9"))  # same account, another IP


@pytest.mark.django_db(transaction=True)
def test_concurrent_guesses_are_all_counted(staff_user: Any) -> None:
    limit = settings.AXES_FAILURE_LIMIT

    def guess(_: int) -> int:
        try:
            return attempt("/accounts/login/", "agent", "wrong").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(guess, range(limit * 3)))
    assert set(codes) <= {200, 429}
    assert codes.count(200) <= limit  # no more than the limit got a real password check
    assert not logged_in(attempt("/accounts/login/", "agent", PASSWORD))


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/set-password/",
        "/accounts/reset/done/",
    ],
)
def test_password_reset_pages_do_not_exist(url: str) -> None:
    assert Client().get(url).status_code == 404
    assert Client().post(url, {"email": "agent@example.com"}).status_code == 404


def test_login_logout_and_password_change_remain(staff_user: Any) -> None:
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    client.force_login(staff_user)
    assert client.get("/accounts/password_change/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
