"""The handoff message tells the customer when a person will reply, from the business hours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from rest_framework.test import APIClient

from support.bot import turn
from support.models import Conversation
from tests.bot.test_chat import chat_stream, deltas_of, done_of
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db

BASE = "/api/support"
LONDON = "Europe/London; Mon-Fri 09:00-17:30; Sat 10:00-14:00"
SATURDAY_EVENING = datetime(2026, 12, 5, 19, 0, tzinfo=UTC)  # closed until Monday 09:00
TUESDAY_NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Any:
    with FakeClaude() as server:
        yield server


@pytest.fixture
def claude(fake: FakeClaude, settings: Any) -> FakeClaude:
    settings.ANTHROPIC_API_KEY = "sk-ant-test-secret-key-0123456789"
    settings.ANTHROPIC_BASE_URL = fake.base_url
    settings.SUPPORT_CLAUDE_TIMEOUT_S = 10.0
    settings.SUPPORT_CLAUDE_STALL_TIMEOUT_S = 10.0
    settings.SUPPORT_BUSINESS_HOURS = LONDON
    settings.SUPPORT_FIRST_RESPONSE_MINUTES = 30
    return fake


@pytest.fixture
def client(anon: APIClient, widget: Any) -> tuple[APIClient, str]:
    created = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json").json()
    return widget(created["token"]), created["id"]


def _at(moment: datetime) -> Any:
    return mock.patch.object(turn.timezone, "now", return_value=moment)


def test_a_tool_handoff_out_of_hours_says_when_the_desk_opens(claude: FakeClaude, client: tuple) -> None:
    widget, conversation_id = client
    claude.enqueue(Reply(text="", tool_use={"name": "escalate_to_human", "input": {"reason": "Refund"}}))
    with _at(SATURDAY_EVENING):
        events = chat_stream(widget, conversation_id, "I want a refund")
    done = done_of(events)
    assert "We're back at 09:00 on Monday UK time; we'll reply here and by email." in done["text"]
    assert deltas_of(events) == done["text"]


def test_claudes_own_handoff_words_get_the_time_too(claude: FakeClaude, client: tuple) -> None:
    widget, conversation_id = client
    claude.enqueue(Reply(text="A colleague will help with that."))
    with _at(TUESDAY_NOON):
        done = done_of(chat_stream(widget, conversation_id, "Can I speak to a person?"))
    assert done["text"] == "A colleague will help with that.\n\nA person will reply here within about 30 minutes."


def test_an_ordinary_answer_says_nothing_about_hours(claude: FakeClaude, client: tuple) -> None:
    widget, conversation_id = client
    claude.enqueue(Reply(text="Open Settings, then Billing."))
    done = done_of(chat_stream(widget, conversation_id, "Where are invoices?"))
    assert done["text"] == "Open Settings, then Billing."
    assert Conversation.objects.get().first_response_due_at is None


def test_the_escalated_ticket_is_due_in_business_hours(claude: FakeClaude, client: tuple) -> None:
    widget, conversation_id = client
    claude.enqueue(Reply(text="", tool_use={"name": "escalate_to_human", "input": {"reason": "Bug"}}))
    done_of(chat_stream(widget, conversation_id, "The calendar is broken"))
    ticket = Conversation.objects.get()
    assert ticket.escalated_at is not None and ticket.first_response_due_at is not None
    assert ticket.first_response_due_at >= ticket.escalated_at
