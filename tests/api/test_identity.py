"""Verified identity on POST conversations, the customer's history (POST widget/history) and per-business
widget config."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import close_old_connections
from rest_framework.test import APIClient

from support import identity
from support.models import BusinessProfile, Conversation

BASE = "/api/support"
SECRET = "s3cret-for-tests"


@pytest.fixture
def signed(settings: Any) -> Any:
    settings.SUPPORT_IDENTITY_SECRET = SECRET
    settings.SUPPORT_REQUIRE_IDENTITY = False
    return settings


def _create(client: APIClient, **body: Any) -> Any:
    return client.post(f"{BASE}/conversations", body, format="json")


def _sign(user_id: str) -> str:
    # Computed here as an embedding site would, independent of support.identity.
    return hmac.new(SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@pytest.mark.django_db
def test_a_valid_user_hash_marks_the_conversation_verified_with_its_identity(anon: APIClient, signed: Any) -> None:
    body = {"user_id": "u1", "business_id": "b7", "audience": "diner", "email": "ann@example.com", "name": "Ann"}
    response = _create(anon, user_hash=_sign("u1"), **body)
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get(pk=response.json()["id"])
    assert conversation.identity_verified is True
    assert (conversation.user_id, conversation.business_id, conversation.audience) == ("u1", "b7", "diner")
    assert (conversation.contact_email, conversation.contact_name) == ("ann@example.com", "Ann")


@pytest.mark.django_db
def test_an_upper_case_hash_is_accepted_as_the_same_hex(anon: APIClient, signed: Any) -> None:
    response = _create(anon, user_id="u1", user_hash=_sign("u1").upper())
    assert Conversation.objects.get(pk=response.json()["id"]).identity_verified is True


@pytest.mark.django_db
def test_a_wrong_hash_is_stored_unverified_when_verification_is_optional(anon: APIClient, signed: Any) -> None:
    response = _create(anon, user_id="u1", business_id="b7", user_hash=_sign("u2"))
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get(pk=response.json()["id"])
    assert conversation.identity_verified is False
    assert conversation.user_id == "u1"


@pytest.mark.django_db
def test_a_wrong_hash_is_refused_naming_user_hash_when_verification_is_required(anon: APIClient, signed: Any) -> None:
    signed.SUPPORT_REQUIRE_IDENTITY = True
    response = _create(anon, user_id="u1", user_hash=_sign("u2"))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["user_hash"]
    assert Conversation.objects.count() == 0


@pytest.mark.django_db
def test_a_missing_hash_is_refused_when_verification_is_required(anon: APIClient, signed: Any) -> None:
    signed.SUPPORT_REQUIRE_IDENTITY = True
    response = _create(anon, user_id="u1", business_id="b7")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["user_hash"]


@pytest.mark.django_db
def test_a_business_without_a_user_is_refused_naming_user_id_when_required(anon: APIClient, signed: Any) -> None:
    signed.SUPPORT_REQUIRE_IDENTITY = True
    response = _create(anon, business_id="b7")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["user_id"]


@pytest.mark.django_db
def test_an_anonymous_visitor_may_still_chat_when_verification_is_required(anon: APIClient, signed: Any) -> None:
    signed.SUPPORT_REQUIRE_IDENTITY = True
    assert _create(anon).status_code == 201


@pytest.mark.django_db
def test_no_secret_means_nothing_is_ever_verified(anon: APIClient, settings: Any) -> None:
    settings.SUPPORT_IDENTITY_SECRET = ""
    response = _create(anon, user_id="u1", user_hash=identity.user_hash("u1", secret=""))
    assert Conversation.objects.get(pk=response.json()["id"]).identity_verified is False


@pytest.mark.django_db
def test_a_bad_audience_or_email_is_a_400_naming_the_field(anon: APIClient, signed: Any) -> None:
    assert list(_create(anon, audience="chef").json()["errors"]) == ["audience"]
    assert list(_create(anon, email="not-an-email").json()["errors"]) == ["email"]


@pytest.mark.django_db
def test_the_secret_never_appears_in_any_answer(anon: APIClient, signed: Any, staff: APIClient) -> None:
    response = _create(anon, user_id="u1", user_hash=_sign("u1"))
    config = anon.get(f"{BASE}/widget/config")
    detail = staff.get(f"{BASE}/conversations/{response.json()['id']}")
    for answer in (response, config, detail):
        assert SECRET not in answer.content.decode()


@pytest.mark.django_db
def test_staff_see_whether_the_identity_is_verified(anon: APIClient, signed: Any, staff: APIClient) -> None:
    verified = _create(anon, user_id="u1", user_hash=_sign("u1"), name="Ann").json()["id"]
    claimed = _create(anon, user_id="u1", name="Mallory").json()["id"]
    body = staff.get(f"{BASE}/conversations/{verified}").json()
    assert (body["identity_verified"], body["contact_name"]) == (True, "Ann")
    assert staff.get(f"{BASE}/conversations/{claimed}").json()["identity_verified"] is False


# --- POST widget/history -----------------------------------------------------------------------
@pytest.mark.django_db
def test_the_widget_lists_the_customers_own_verified_conversations(anon: APIClient, signed: Any) -> None:
    mine = [_create(anon, user_id="u1", user_hash=_sign("u1")).json()["id"] for _ in range(2)]
    _create(anon, user_id="u1")  # someone typing u1 into a page: not theirs to list
    _create(anon, user_id="u2", user_hash=_sign("u2"))
    response = anon.post(f"{BASE}/widget/history", {"user_id": "u1", "user_hash": _sign("u1")}, format="json")
    assert response.status_code == 200, response.content
    assert sorted(row["id"] for row in response.json()["results"]) == sorted(mine)


@pytest.mark.django_db
def test_another_users_hash_does_not_list_them(anon: APIClient, signed: Any) -> None:
    _create(anon, user_id="u1", user_hash=_sign("u1"))
    response = anon.post(f"{BASE}/widget/history", {"user_id": "u1", "user_hash": _sign("u2")}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["user_hash"]
    assert "u1" not in response.content.decode().replace('"user_hash"', "")


@pytest.mark.django_db
def test_history_without_a_user_id_is_a_400_naming_it(anon: APIClient, signed: Any) -> None:
    response = anon.post(f"{BASE}/widget/history", {"user_hash": _sign("u1")}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["user_id"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_verified_creates_all_land_verified(signed: Any) -> None:
    results: list[int] = []

    def create() -> None:
        try:
            results.append(_create(APIClient(), user_id="u9", user_hash=_sign("u9")).status_code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 4
    assert Conversation.objects.filter(user_id="u9", identity_verified=True).count() == 4


# --- GET widget/config?business_id= --------------------------------------------------------------
@pytest.mark.django_db
def test_a_business_profile_sets_the_widgets_title_greeting_and_email(anon: APIClient, settings: Any) -> None:
    BusinessProfile.objects.create(
        business_id="b7", display_name="Trattoria Sette", greeting="Ciao!", support_email="help@sette.example"
    )
    body = anon.get(f"{BASE}/widget/config", {"business_id": "b7"}).json()
    assert (body["title"], body["greeting"], body["support_email"]) == (
        "Trattoria Sette",
        "Ciao!",
        "help@sette.example",
    )
    other = anon.get(f"{BASE}/widget/config", {"business_id": "b8"}).json()
    assert (other["title"], other["support_email"]) == (settings.SUPPORT_WIDGET_TITLE, settings.SUPPORT_EMAIL)


# --- The README's server-side snippets ------------------------------------------------------------
def _readme_snippet(language: str) -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Verified identity and venues", 1)[1]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readmes_python_snippet_computes_the_hash_the_server_accepts(settings: Any) -> None:
    settings.SUPPORT_IDENTITY_SECRET = SECRET
    scope: dict[str, Any] = {"SUPPORT_IDENTITY_SECRET": SECRET, "user_id": 42}
    exec(_readme_snippet("python"), scope)  # our own README: run it so it stays true
    assert identity.hash_valid(user_id="42", given=scope["user_hash"])


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_readmes_javascript_snippet_computes_the_hash_the_server_accepts(settings: Any) -> None:
    settings.SUPPORT_IDENTITY_SECRET = SECRET
    program = f"const SUPPORT_IDENTITY_SECRET = {SECRET!r}; const userId = 42;\n"
    program += _readme_snippet("javascript") + "\nprocess.stdout.write(userHash);\n"
    given = subprocess.run(["node", "-e", program], capture_output=True, text=True, check=True, timeout=30).stdout
    assert identity.hash_valid(user_id="42", given=given)


@pytest.mark.django_db
def test_an_over_long_business_id_in_the_config_query_is_a_400_naming_it(anon: APIClient) -> None:
    response = anon.get(f"{BASE}/widget/config", {"business_id": "b" * 129})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["business_id"]
