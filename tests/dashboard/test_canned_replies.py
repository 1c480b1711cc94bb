"""Canned replies: the model, its admin (search, active filter) and the composer's picker on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from support import selectors
from support.models import CannedReply

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/support/cannedreply/"


@pytest.fixture
def replies() -> dict[str, CannedReply]:
    return {
        "refund": CannedReply.objects.create(title="Refunds", content="Refunds take **5 days**."),
        "hours": CannedReply.objects.create(title="Opening hours", content="We open at 9:00."),
        "old": CannedReply.objects.create(title="Old promo", content="Use code SPRING.", is_active=False),
    }


def shown(response: Any) -> set[str]:
    assert response.status_code == 200
    return {reply.title for reply in response.context["cl"].result_list}


def test_a_canned_reply_is_active_by_default_and_named_by_its_title() -> None:
    reply = CannedReply.objects.create(title="Greeting", content="Hello!")
    reply.refresh_from_db()
    assert reply.is_active is True
    assert reply.created_at is not None
    assert str(reply) == "Greeting"


def test_every_field_explains_itself_in_the_admin() -> None:
    for name in ("title", "content", "is_active"):
        assert CannedReply._meta.get_field(name).help_text, name


def test_the_picker_offers_only_active_replies_by_title(replies: dict[str, CannedReply]) -> None:
    assert [r.title for r in selectors.canned_reply_list_active()] == ["Opening hours", "Refunds"]


def test_the_admin_lists_searches_and_filters_canned_replies(
    admin_client_for: Client, replies: dict[str, CannedReply]
) -> None:
    assert shown(admin_client_for.get(CHANGELIST)) == {"Refunds", "Opening hours", "Old promo"}
    assert shown(admin_client_for.get(f"{CHANGELIST}?q=5+days")) == {"Refunds"}
    assert shown(admin_client_for.get(f"{CHANGELIST}?q=opening")) == {"Opening hours"}
    assert shown(admin_client_for.get(f"{CHANGELIST}?is_active__exact=0")) == {"Old promo"}
    assert shown(admin_client_for.get(f"{CHANGELIST}?is_active__exact=1")) == {"Refunds", "Opening hours"}


def test_staff_add_and_deactivate_a_canned_reply_in_the_admin(
    admin_client_for: Client, replies: dict[str, CannedReply]
) -> None:
    response = admin_client_for.post(
        f"{CHANGELIST}add/", {"title": "Thanks", "content": "Thanks for waiting!", "is_active": "on"}
    )
    assert response.status_code == 302
    added = CannedReply.objects.get(title="Thanks")
    assert added.content == "Thanks for waiting!" and added.is_active

    response = admin_client_for.post(
        f"{CHANGELIST}{added.pk}/change/", {"title": "Thanks", "content": "Thanks for waiting!"}
    )
    assert response.status_code == 302
    added.refresh_from_db()
    assert added.is_active is False
    assert "Thanks" not in [r.title for r in selectors.canned_reply_list_active()]


def test_the_admin_refuses_a_canned_reply_without_content(admin_client_for: Client) -> None:
    response = admin_client_for.post(f"{CHANGELIST}add/", {"title": "Empty", "content": "", "is_active": "on"})
    assert response.status_code == 200
    assert "content" in response.context["adminform"].form.errors
    assert not CannedReply.objects.exists()
