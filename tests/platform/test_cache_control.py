"""Staff pages, staff API answers and exports are never stored by a browser or proxy cache."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_browser(staff_user: Any) -> Client:
    staff_user.is_superuser = True
    staff_user.save()
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/",
        "/dashboard/conversations/",
        "/dashboard/conversations.csv",
        "/dashboard/analytics/",
        "/admin/",
        "/admin/support/conversation/",
        "/accounts/login/",
    ],
)
def test_staff_pages_and_the_csv_export_say_no_store(staff_browser: Client, url: str) -> None:
    response = staff_browser.get(url)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("url", ["/api/support/conversations", "/api/support/tickets", "/api/support/analytics"])
def test_staff_api_answers_say_no_store(staff: APIClient, url: str) -> None:
    response = staff.get(url)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_a_widget_transcript_says_no_store(anon: APIClient, widget: Any) -> None:
    created = anon.post("/api/support/conversations", {"source": "web"}, format="json").json()
    assert "no-store" in anon.post("/api/support/conversations", {"source": "web"}, format="json")["Cache-Control"]
    response = widget(created["token"]).get(f"/api/support/conversations/{created['id']}")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_the_widget_config_keeps_its_public_caching(anon: APIClient, settings: Any) -> None:
    response = anon.get("/api/support/widget/config")
    assert response["Cache-Control"] == f"public, max-age={settings.SUPPORT_WIDGET_CONFIG_MAX_AGE_S}"


def test_a_logged_out_redirect_from_a_staff_page_is_not_stored() -> None:
    response = Client().get("/dashboard/")
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
