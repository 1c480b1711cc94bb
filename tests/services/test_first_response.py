"""First-response due times: stamped on escalation in business hours, stopped by a person's first reply."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.test import override_settings

from support import services
from support.models import Conversation, EscalationReason, Rating, Status, TicketEvent

LONDON = "Europe/London; Mon-Fri 09:00-17:30"
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
FRIDAY_17 = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db

Make = Callable[..., tuple[Conversation, str]]


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=at):
        yield


def _stored(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


@override_settings(SUPPORT_BUSINESS_HOURS=LONDON, SUPPORT_FIRST_RESPONSE_MINUTES=60)
def test_an_escalation_is_due_a_first_response_in_business_hours(make_conversation: Make) -> None:
    conversation, _ = make_conversation()
    with frozen(FRIDAY_17):
        services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)
    stored = _stored(conversation)
    assert stored.escalated_at == FRIDAY_17
    # 30 minutes on Friday, the other 30 on Monday morning.
    assert stored.first_response_due_at == datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    assert stored.first_human_response_at is None
    assert conversation.first_response_due_at == stored.first_response_due_at


@override_settings(SUPPORT_BUSINESS_HOURS="", SUPPORT_FIRST_RESPONSE_MINUTES=45)
def test_without_business_hours_the_target_is_wall_clock_minutes(make_conversation: Make, staff_user: Any) -> None:
    conversation, _ = make_conversation()
    with frozen(MONDAY_10):
        services.conversation_update(conversation=conversation, actor=staff_user, changes={"escalated": True})
    assert _stored(conversation).first_response_due_at == MONDAY_10 + timedelta(minutes=45)


def test_every_escalation_path_sets_a_due_time(make_conversation: Make) -> None:
    conversation, _ = make_conversation()
    services.conversation_rate(conversation=conversation, rating=Rating.DOWN)
    assert _stored(conversation).first_response_due_at is not None


def test_changes_that_are_not_escalations_leave_the_due_time_alone(make_conversation: Make, staff_user: Any) -> None:
    conversation, _ = make_conversation()
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": Status.OPEN})
    assert _stored(conversation).first_response_due_at is None
    services.conversation_escalate(conversation=conversation, reason=EscalationReason.NO_ANSWER)
    due = _stored(conversation).first_response_due_at
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"assigned_to": staff_user})
    assert _stored(conversation).first_response_due_at == due
    assert not TicketEvent.objects.filter(conversation=conversation, field__startswith="first_").exists()


def test_the_first_reply_is_marked_once(make_conversation: Make) -> None:
    conversation, _ = make_conversation()
    services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)
    first = datetime(2026, 11, 30, 10, 5, tzinfo=UTC)
    assert services.conversation_first_response_mark(conversation=conversation, at=first) is True
    stale = Conversation.objects.get(pk=conversation.pk)
    stale.first_human_response_at = None  # another worker's copy, read before the first reply
    later = first + timedelta(minutes=3)
    assert services.conversation_first_response_mark(conversation=stale, at=later) is False
    assert stale.first_human_response_at == first
    assert _stored(conversation).first_human_response_at == first


def test_a_new_escalation_starts_a_new_wait_for_a_person(make_conversation: Make, staff_user: Any) -> None:
    conversation, _ = make_conversation()
    with frozen(MONDAY_10):
        services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)
    services.conversation_first_response_mark(conversation=conversation, at=MONDAY_10 + timedelta(minutes=5))
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": Status.CLOSED})
    later = MONDAY_10 + timedelta(days=1)
    with frozen(later):
        services.conversation_rate(conversation=conversation, rating=Rating.DOWN)
    stored = _stored(conversation)
    assert stored.escalated_at == later
    assert stored.first_human_response_at is None
    assert stored.first_response_due_at is not None and stored.first_response_due_at > later
