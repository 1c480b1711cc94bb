"""A staff reply and a customer's turn to a person: the first-response time, the webhooks and the away mail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from support import services, tasks
from support.bot import handoff
from support.models import Conversation, EscalationReason

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """What reached the task queue: (task name, arguments)."""
    seen: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(tasks, "notification_fanout", lambda *args: seen.append(("notify", args)))
    monkeypatch.setattr(tasks, "customer_away_reply", lambda *args: seen.append(("away", args)))
    return seen


@pytest.fixture
def waiting(make_conversation: Callable[..., tuple[Conversation, str]]) -> Conversation:
    conversation, _ = make_conversation()
    services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)
    conversation.refresh_from_db()
    return conversation


def _events(queued: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    return [args[0] if name == "notify" else "away-mail" for name, args in queued]


def test_the_first_staff_reply_is_the_first_response_and_a_later_one_does_not_move_it(
    waiting: Conversation, staff_user: Any, queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = services.conversation_reply(conversation=waiting, author=staff_user, content="On it.")
        services.conversation_reply(conversation=waiting, author=staff_user, content="Done.")

    waiting.refresh_from_db()
    first.refresh_from_db()  # as stored: MongoDB keeps milliseconds
    assert waiting.first_human_response_at == first.created_at
    assert _events(queued).count("conversation.replied") == 2


def test_a_customer_turn_to_a_person_tells_the_webhooks(
    waiting: Conversation, queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        turn = handoff.human_turn_store(conversation=waiting, text="Still there?")

    [(event, payload, conversation_id)] = [args for name, args in queued if name == "notify"]
    assert (event, conversation_id) == ("conversation.customer_replied", str(waiting.pk))
    assert payload["data"]["message_id"] == str(turn.pk)


@pytest.mark.parametrize(
    ("email", "last_seen", "mailed"),
    [
        ("diner@example.com", None, True),
        ("diner@example.com", timedelta(minutes=5), True),
        ("diner@example.com", timedelta(seconds=30), False),
        ("", timedelta(minutes=5), False),
    ],
)
def test_a_reply_is_mailed_only_to_a_customer_who_left_the_widget_and_gave_an_address(
    waiting: Conversation,
    staff_user: Any,
    queued: list[Any],
    django_capture_on_commit_callbacks: Any,
    email: str,
    last_seen: timedelta | None,
    mailed: bool,
) -> None:
    seen_at = None if last_seen is None else timezone.now() - last_seen
    Conversation.objects.filter(pk=waiting.pk).update(contact_email=email, customer_last_seen_at=seen_at)
    waiting.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        reply = services.conversation_reply(conversation=waiting, author=staff_user, content="Here is your answer.")

    away = [args for name, args in queued if name == "away"]
    assert away == ([(str(waiting.pk), str(reply.pk))] if mailed else [])
