"""Values at the edge of what Python or the database can hold: a 4xx naming the field, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from support.models import Conversation, Status, TicketEvent

pytestmark = pytest.mark.django_db

BASE = "/api/support"
LAST_DAY = "9999-12-31"
FORTY_DIGITS = "1234567890" * 4


@pytest.fixture
def staff_browser(staff_user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    return client


@pytest.fixture
def boss(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "correct-horse-battery")


@pytest.fixture
def admin_browser(boss: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(boss)
    return client


@pytest.mark.parametrize("endpoint", ["conversations", "tickets"])
def test_it_rejects_the_last_representable_day_as_the_end_of_a_list_filter_naming_the_field(
    staff: APIClient, make_conversation: Any, endpoint: str
) -> None:
    make_conversation()
    staff.raise_request_exception = False
    response = staff.get(f"{BASE}/{endpoint}", {"created_to": LAST_DAY})
    assert response.status_code == 400, response.content[:300]
    assert "created_to" in response.json()["errors"]
    # The day before still works: the bound is the overflow, not an arbitrary cut.
    assert staff.get(f"{BASE}/{endpoint}", {"created_to": "9999-12-30"}).status_code == 200


@pytest.mark.parametrize("page", ["/dashboard/", "/dashboard/conversations/"])
def test_the_dashboard_lists_show_a_form_error_for_the_last_representable_day(
    staff_browser: Client, make_conversation: Any, page: str
) -> None:
    make_conversation()
    response = staff_browser.get(page, {"created_to": LAST_DAY})
    assert response.status_code == 400, response.content[:300]  # the page, with the form's error
    assert "created_to" in response.context["form"].errors


def test_the_csv_export_refuses_the_last_representable_day_naming_the_field(
    staff_browser: Client, make_conversation: Any
) -> None:
    make_conversation()
    response = staff_browser.get("/dashboard/conversations.csv", {"created_to": LAST_DAY})
    assert response.status_code == 400
    assert "created_to" in response.content.decode()


def test_the_api_refuses_a_forty_digit_staff_id_as_a_filter(staff: APIClient, make_conversation: Any) -> None:
    make_conversation()
    staff.raise_request_exception = False
    response = staff.get(f"{BASE}/conversations", {"assigned_to": FORTY_DIGITS})
    assert response.status_code == 400
    assert "assigned_to" in response.json()["errors"]


def test_the_dashboard_shows_a_form_error_for_a_forty_digit_staff_id(
    staff_browser: Client, make_conversation: Any
) -> None:
    make_conversation()
    response = staff_browser.get("/dashboard/conversations/", {"assigned_to": FORTY_DIGITS})
    assert response.status_code == 400
    assert "assigned_to" in response.context["form"].errors


def test_the_admin_list_survives_a_forty_digit_assignee_filter(admin_browser: Client, make_conversation: Any) -> None:
    make_conversation()
    url = "/admin/support/conversation/"
    for query in (f"assigned_to__id__exact={FORTY_DIGITS}", f"assigned_to={FORTY_DIGITS}"):
        response = admin_browser.get(f"{url}?{query}")
        # The admin answers a lookup it cannot use by redirecting with ?e=1; never a 500.
        assert response.status_code in (200, 302), (query, response.status_code)


def test_the_admin_change_form_refuses_a_forty_digit_assignee(admin_browser: Client, make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    response = admin_browser.post(
        f"/admin/support/conversation/{conversation.pk}/change/",
        {
            "status": Status.CLOSED,
            "escalation_reason": "",
            "assigned_to": FORTY_DIGITS,
            "notes": "",
            "contact_email": "",
        },
    )
    assert response.status_code == 200  # the form again, with its error
    assert "assigned_to" in response.context["adminform"].form.errors
    assert Conversation.objects.get(pk=conversation.pk).status != Status.CLOSED


def test_staff_patch_refuses_a_contact_email_longer_than_the_column(staff: APIClient, make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    email = "a" * 64 + "@" + ".".join(["b" * 60] * 3 + ["b" * 54]) + ".com"  # 306 characters, each part valid
    assert len(email) == 306
    response = staff.patch(f"{BASE}/conversations/{conversation.pk}", {"contact_email": email}, format="json")
    assert response.status_code == 400
    assert "contact_email" in response.json()["errors"]
    assert Conversation.objects.get(pk=conversation.pk).contact_email == ""
    assert TicketEvent.objects.count() == 0


def test_the_dashboard_contact_form_refuses_an_address_longer_than_the_column(
    staff_browser: Client, make_conversation: Any
) -> None:
    conversation, _ = make_conversation()
    email = "a" * 64 + "@" + ".".join(["b" * 60] * 3 + ["b" * 54]) + ".com"
    response = staff_browser.post(
        f"/dashboard/conversations/{conversation.pk}/", {"action": "contact", "contact_email": email}
    )
    assert response.status_code == 400
    assert "contact_email" in response.context["contact_form"].errors
    assert Conversation.objects.get(pk=conversation.pk).contact_email == ""
