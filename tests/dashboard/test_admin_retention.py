"""The admin's conversation delete goes through the retention service (rollups kept, an erasure record
written), and the erasure records are shown read-only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from support import services
from support.models import Conversation, ErasureKind, ErasureRecord, Message, TicketEvent
from tests.services.test_retention import full_conversation
from tests.services.test_rollups import snapshot

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/support/conversation/"
RECORDS = "/admin/support/erasurerecord/"


def test_the_delete_page_asks_to_confirm_without_refusing_for_the_turns_and_events(
    admin_client_for: Client, staff_user: Any
) -> None:
    conversation = full_conversation(staff_user)
    response = admin_client_for.get(f"{CHANGELIST}{conversation.pk}/delete/")
    assert response.status_code == 200
    assert not response.context["perms_lacking"]
    assert b"Yes, I\xe2\x80\x99m sure" in response.content


def test_deleting_a_conversation_in_the_admin_keeps_the_rollups_and_writes_a_record(
    admin_client_for: Client, staff_user: Any
) -> None:
    conversation = full_conversation(staff_user)
    kept = full_conversation(staff_user)
    services.rollups_rebuild()
    figures = snapshot()

    response = admin_client_for.post(f"{CHANGELIST}{conversation.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert list(Conversation.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()
    assert not TicketEvent.objects.filter(conversation_id=conversation.pk).exists()
    assert snapshot() == figures
    record = ErasureRecord.objects.get()
    assert (record.kind, record.operator, record.matched) == (
        ErasureKind.ADMIN,
        "boss",
        {"conversations": [str(conversation.pk)]},
    )


def test_delete_selected_goes_through_the_same_service(admin_client_for: Client, staff_user: Any) -> None:
    chosen = [full_conversation(staff_user) for _ in range(2)]
    kept = full_conversation(staff_user)
    services.rollups_rebuild()
    figures = snapshot()

    response = admin_client_for.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [c.pk for c in chosen], "post": "yes"}
    )

    assert response.status_code == 302
    assert list(Conversation.objects.values_list("pk", flat=True)) == [kept.pk]
    assert snapshot() == figures
    record = ErasureRecord.objects.get()
    assert record.kind == ErasureKind.ADMIN and record.counts["conversations"] == 2
    assert sorted(record.matched["conversations"]) == sorted(str(c.pk) for c in chosen)


def test_erasure_records_are_listed_and_shown_but_never_added_changed_or_deleted(
    admin_client_for: Client, staff_user: Any
) -> None:
    full_conversation(staff_user, user_id="u-7")
    result = services.subject_erase(operator="dpo", user_id="u-7")
    record = result.record
    assert record is not None

    listing = admin_client_for.get(RECORDS)
    detail = admin_client_for.get(f"{RECORDS}{record.pk}/change/")

    assert listing.status_code == 200 and b"dpo" in listing.content and b"u-7" in listing.content
    assert detail.status_code == 200 and b"messages: 2" in detail.content
    assert admin_client_for.get(f"{RECORDS}add/").status_code == 403
    assert admin_client_for.post(f"{RECORDS}{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ErasureRecord.objects.filter(pk=record.pk).exists()
