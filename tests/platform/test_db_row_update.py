"""support.db.row_update: the write path's conditional update of one conversation, without the ORM's
query compiler, must mean what QuerySet.filter().update() with F() and Case() meant, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from support import db, services
from support.models import Conversation

pytestmark = pytest.mark.django_db


def _update(conversation: Conversation, **changes: Any) -> int:
    options: dict[str, Any] = {"where": {}, "at_most": {}, "add": {}, "assign": {}, "raise_to": {}, **changes}
    return db.row_update(Conversation, pk=conversation.pk, **options)


def _fresh() -> Conversation:
    conversation, _token = services.conversation_create(source="web")
    return conversation


def test_it_adds_sets_and_answers_one_row_matched() -> None:
    conversation = _fresh()
    matched = _update(
        conversation,
        where={"status": conversation.status, "closed_at": None, "rating": conversation.rating},
        add={"message_count": 2, "cost_micros": 570},
        assign={"substantive_question": True},
    )
    conversation.refresh_from_db()
    assert matched == 1
    assert (conversation.message_count, conversation.cost_micros, conversation.substantive_question) == (2, 570, True)


def test_it_changes_nothing_when_a_guarded_field_moved() -> None:
    conversation = _fresh()
    matched = _update(conversation, where={"status": "closed"}, add={"message_count": 2})
    matched_rated = _update(conversation, where={"rating": "up"}, add={"message_count": 2})
    matched_closed = _update(conversation, where={"closed_at": timezone.now()}, add={"message_count": 2})
    conversation.refresh_from_db()
    assert (matched, matched_rated, matched_closed, conversation.message_count) == (0, 0, 0, 0)


def test_it_holds_a_field_to_its_ceiling() -> None:
    conversation = _fresh()
    _update(conversation, add={"message_count": 4})
    assert _update(conversation, at_most={"message_count": 3}, add={"message_count": 2}) == 0
    assert _update(conversation, at_most={"message_count": 4}, add={"message_count": 2}) == 1
    conversation.refresh_from_db()
    assert conversation.message_count == 6


def test_it_only_ever_moves_a_time_forward_and_fills_an_empty_one() -> None:
    conversation = _fresh()
    now = timezone.now().replace(microsecond=123000)  # MongoDB keeps milliseconds
    Conversation.objects.filter(pk=conversation.pk).update(last_turn_at=None)
    _update(conversation, raise_to={"last_turn_at": now})
    conversation.refresh_from_db()
    assert conversation.last_turn_at == now
    _update(conversation, raise_to={"last_turn_at": now - timedelta(seconds=5)})
    conversation.refresh_from_db()
    assert conversation.last_turn_at == now
    _update(conversation, raise_to={"last_turn_at": now + timedelta(seconds=5)})
    conversation.refresh_from_db()
    assert conversation.last_turn_at == now + timedelta(seconds=5)


def test_it_guards_on_times_and_foreign_keys_as_stored() -> None:
    conversation = _fresh()
    guard = {"created_at": conversation.created_at, "business_id": conversation.business_id}
    assert _update(conversation, where=guard, add={"message_count": 1}) == 1
    moved = {**guard, "created_at": conversation.created_at + timedelta(milliseconds=1)}
    assert _update(conversation, where=moved, add={"message_count": 1}) == 0


def test_it_matches_nothing_when_one_check_of_many_differs() -> None:
    conversation = _fresh()
    checks = {"status": conversation.status, "closed_at": None, "rating": conversation.rating, "escalated": False}
    for name, wrong in (("status", "closed"), ("closed_at", timezone.now()), ("rating", "down"), ("escalated", True)):
        assert _update(conversation, where={**checks, name: wrong}, add={"message_count": 1}) == 0, name
    assert _update(conversation, where=checks, add={"message_count": 1}) == 1
    conversation.refresh_from_db()
    assert conversation.message_count == 1
