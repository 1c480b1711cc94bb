"""Telling people (issue 12): what a transition publishes, when, and the mail it sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.test import override_settings

from support import services, tasks
from support.models import Conversation, EscalationReason, EventField, Status, TicketEvent
from support.services import budget as budget_service
from tests.fakes.smtp import smtp_server, smtp_settings

pytestmark = pytest.mark.django_db

SMTP_PORT = 8221


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any], str | None]]:
    """What reached the task queue: (event, payload, conversation id) per notification."""
    seen: list[tuple[str, dict[str, Any], str | None]] = []
    monkeypatch.setattr(tasks, "notification_fanout", lambda *args: seen.append(args))
    return seen


@pytest.fixture
def conversation(make_conversation: Callable[..., tuple[Conversation, str]]) -> Conversation:
    conversation, _ = make_conversation()
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role="user", content="My booking vanished", priced=False),
            services.Turn(role="assistant", content="Let me get a person.", priced=False),
        ],
    )
    conversation.refresh_from_db()
    return conversation


def _escalate(conversation: Conversation) -> None:
    services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)


def _events(published: list[tuple[str, dict[str, Any], str | None]]) -> list[str]:
    return [event for event, _payload, _id in published]


def test_escalation_assignment_and_close_each_publish_once_after_the_write(
    conversation: Conversation, staff_user: Any, published: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _escalate(conversation)
        _escalate(conversation)  # already waiting: no change, no second event
        services.conversation_update(conversation=conversation, actor=staff_user, changes={"assigned_to": staff_user})
        services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": Status.CLOSED})
    assert _events(published) == ["conversation.escalated", "conversation.assigned", "conversation.closed"]
    _event, payload, conversation_id = published[1]
    assert conversation_id == str(conversation.pk)
    assert payload["type"] == "conversation.assigned"
    assert payload["data"]["conversation"]["assigned_to"] == "agent"
    assert payload["data"]["conversation"]["url"].endswith(f"/dashboard/conversations/{conversation.pk}/")


def test_a_payload_shows_the_state_its_event_produced(
    conversation: Conversation, published: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _escalate(conversation)
        services.conversation_update(conversation=conversation, actor=None, changes={"status": Status.CLOSED})
    escalated = published[0][1]["data"]["conversation"]
    assert escalated["status"] == Status.NEEDS_REVIEW
    assert escalated["escalation_reason"] == EscalationReason.HUMAN_REQUESTED


def test_nothing_is_published_when_the_write_rolls_back(
    conversation: Conversation, published: list[Any], on_mongodb: bool, django_capture_on_commit_callbacks: Any
) -> None:
    if on_mongodb:
        pytest.skip("transaction.atomic() does not roll back on django-mongodb-backend (support/db.py)")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            _escalate(conversation)
            raise RuntimeError("the request failed after the transition")
    assert published == []


def test_a_queue_that_cannot_be_reached_never_fails_the_write(
    conversation: Conversation, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    def broken(*args: Any) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(tasks, "notification_fanout", broken)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.conversation_escalate(conversation=conversation, reason=EscalationReason.STAFF)
    conversation.refresh_from_db()
    assert conversation.status == Status.NEEDS_REVIEW


@override_settings(SUPPORT_NOTIFY_EMAILS=["desk@example.com", "lead@example.com"])
def test_an_unassigned_escalation_mails_support_notify_emails_in_text_and_html(
    conversation: Conversation, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _escalate(conversation)
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["desk@example.com", "lead@example.com"]
    assert "My booking vanished" in sent.subject
    assert "Customer asked for a human" in sent.body and "My booking vanished" in sent.body
    html, mimetype = sent.alternatives[0]  # type: ignore[attr-defined]
    assert mimetype == "text/html" and f"/dashboard/conversations/{conversation.pk}/" in str(html)
    event = TicketEvent.objects.get(conversation=conversation, field=EventField.EMAIL_SENT)
    assert event.new_value == "escalation to desk@example.com, lead@example.com"
    assert event.actor_label == "system"


@override_settings(SUPPORT_NOTIFY_EMAILS=["desk@example.com"])
def test_an_assigned_escalation_mails_the_assignee_only(
    conversation: Conversation, staff_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"assigned_to": staff_user})
    with django_capture_on_commit_callbacks(execute=True):
        _escalate(conversation)
    assert [sent.to for sent in mail.outbox] == [["agent@example.com"]]


@override_settings(SUPPORT_NOTIFY_EMAILS=[])
def test_an_escalation_nobody_is_set_to_hear_of_sends_and_records_nothing(
    conversation: Conversation, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _escalate(conversation)
    assert mail.outbox == []
    assert not TicketEvent.objects.filter(field=EventField.EMAIL_SENT).exists()


@pytest.fixture
def smtp() -> Iterator[tuple[Any, list[Any]]]:
    with smtp_server(SMTP_PORT) as (controller, messages):
        with override_settings(**smtp_settings(controller)):
            yield controller, messages


@override_settings(SUPPORT_NOTIFY_EMAILS=["desk@example.com"])
def test_a_real_smtp_server_receives_the_escalation_mail(
    conversation: Conversation, smtp: tuple[Any, list[Any]], django_capture_on_commit_callbacks: Any
) -> None:
    _controller, messages = smtp
    with django_capture_on_commit_callbacks(execute=True):
        _escalate(conversation)
    assert len(messages) == 1
    received = messages[0]
    assert received["To"] == "desk@example.com"
    assert {part.get_content_type() for part in received.walk()} >= {"text/plain", "text/html"}


def test_a_real_smtp_server_receives_the_away_reply_with_the_last_turns(
    conversation: Conversation, smtp: tuple[Any, list[Any]]
) -> None:
    _controller, messages = smtp
    services.conversation_contact_set(conversation=conversation, email="diner@example.com")
    reply = services.message_log(
        conversation=conversation,
        turns=[services.Turn(role="assistant", content="Found it: booking #42 is back.", priced=False)],
    )[0]
    assert services.customer_away_reply_send(conversation=conversation, message=reply)
    assert len(messages) == 1
    received = messages[0]
    assert received["To"] == "diner@example.com"
    text = received.get_body(preferencelist=("plain",)).get_content()
    assert "Found it: booking #42 is back." in text and "My booking vanished" in text
    assert TicketEvent.objects.filter(
        conversation=conversation, field=EventField.EMAIL_SENT, new_value="away_reply to diner@example.com"
    ).exists()


def test_an_away_reply_needs_the_customers_email(conversation: Conversation) -> None:
    reply = conversation.messages.order_by("-created_at").first()
    assert reply is not None
    assert services.customer_away_reply_send(conversation=conversation, message=reply) is False
    assert mail.outbox == []


@override_settings(SUPPORT_DAILY_BUDGET_USD=Decimal("1"))
def test_the_budget_threshold_is_published_once_a_day(
    db: None, published: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            reservation = services.daily_spend_reserve(micros=300_000)
            assert reservation is not None
            services.daily_spend_settle(reservation=reservation, micros=300_000)
    assert _events(published) == ["budget.threshold"]
    payload = published[0][1]
    assert published[0][2] is None
    assert payload["data"]["threshold_percent"] == int(budget_service.WARN_AT * 100)
    assert payload["data"]["percent"] == 90
    assert "conversation" not in payload["data"]
