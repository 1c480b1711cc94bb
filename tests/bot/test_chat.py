"""The chat proxy end to end: our endpoint, the real anthropic SDK, and FakeClaude over real HTTP."""

from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory

from support import services
from support.api.chat import ChatApi
from support.bot.prompt import ESCALATE_TOOL, system_prompt
from support.bot.rules import customer_asks_for_human
from support.bot.tokens import token_bound
from support.bot.turn import CLOSING_LINE, ChatResult
from support.models import Conversation, DailySpend, IdempotencyRecord, KnowledgeArticle, Message, Role, TicketEvent
from support.services import budget
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db

BASE = "/api/support"
API_KEY = "sk-ant-test-secret-key-0123456789"
MODEL = "claude-haiku-4-5"


# --- Helpers ---------------------------------------------------------------------------------
@pytest.fixture
def fake() -> Iterator[FakeClaude]:
    with FakeClaude() as server:
        yield server


@pytest.fixture
def claude(fake: FakeClaude, settings: Any) -> FakeClaude:
    """The server talks to FakeClaude through the real SDK, as it would to Anthropic."""
    settings.ANTHROPIC_API_KEY = API_KEY
    settings.ANTHROPIC_BASE_URL = fake.base_url
    settings.SUPPORT_CLAUDE_MODEL = MODEL
    settings.SUPPORT_CLAUDE_MAX_RETRIES = 2
    settings.SUPPORT_CLAUDE_TIMEOUT_S = 10.0
    settings.SUPPORT_CLAUDE_STALL_TIMEOUT_S = 10.0
    return fake


@pytest.fixture
def no_key(settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""


@pytest.fixture
def kb(db: None) -> None:
    # MongoDB tests start from empty collections, so the sample articles the migration added are gone.
    services.knowledge_article_seed_samples()


@pytest.fixture
def conversation(anon: APIClient) -> dict[str, Any]:
    response = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json")
    assert response.status_code == 201
    return response.json()


@pytest.fixture
def client(conversation: dict[str, Any], widget: Any) -> APIClient:
    return widget(conversation["token"])


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def post_chat(client: APIClient, conversation_id: str, message: str, **extra: Any) -> Any:
    body: dict[str, Any] = {"message": message}
    if "stream" in extra:
        body["stream"] = extra.pop("stream")
    return client.post(f"{BASE}/conversations/{conversation_id}/chat", body, format="json", **extra)


def chat_stream(client: APIClient, conversation_id: str, message: str, **extra: Any) -> list[tuple[str, dict]]:
    response = post_chat(client, conversation_id, message, **extra)
    assert response.status_code == 200, getattr(response, "content", b"")
    return parse_sse(b"".join(response.streaming_content).decode())


def done_of(events: list[tuple[str, dict]]) -> dict[str, Any]:
    assert events[-1][0] == "done", events
    return events[-1][1]


def deltas_of(events: list[tuple[str, dict]]) -> str:
    return "".join(data["text"] for name, data in events if name == "delta")


def stored(conversation: dict[str, Any]) -> Conversation:
    return Conversation.objects.get(pk=Conversation._meta.pk.to_python(conversation["id"]))


def reply_of(done: dict[str, Any]) -> Message:
    """The stored reply behind a `done` event (the widget's `done` carries no model, usage or cost)."""
    return Message.objects.get(pk=Message._meta.pk.to_python(done["message_id"]))


def messages_of(conversation: dict[str, Any]) -> list[Message]:
    return list(Message.objects.filter(conversation=stored(conversation)).order_by("created_at", "pk"))


# --- Streaming -------------------------------------------------------------------------------
def test_it_streams_claudes_deltas_in_order_then_the_stored_reply(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(Reply(chunks=["Plans ", "start ", "at ", "£0."], input_tokens=30, output_tokens=8))
    events = chat_stream(client, conversation["id"], "How much is it?")

    names = [name for name, _ in events]
    assert names == ["start", "delta", "delta", "delta", "delta", "done"]
    assert [data["text"] for name, data in events if name == "delta"] == ["Plans ", "start ", "at ", "£0."]
    done = done_of(events)
    user, assistant = messages_of(conversation)
    assert events[0][1] == {"user_message_id": str(user.pk)}
    assert done["user_message_id"] == str(user.pk)
    assert done["message_id"] == str(assistant.pk)
    assert done["text"] == assistant.content == "Plans start at £0."
    assert (user.role, user.content, assistant.role) == (Role.USER, "How much is it?", Role.ASSISTANT)
    assert done["partial"] is False and done["fallback"] is False and done["escalated"] is False
    assert done["escalation_reason"] == ""
    assert assistant.model == MODEL and (assistant.input_tokens, assistant.output_tokens) == (30, 8)
    assert not {"model", "usage", "cost_micros", "cost_usd"} & set(done), "the widget is told no usage or cost"
    assert done["latency_ms"] >= done["first_token_ms"] >= 0
    assert assistant.latency_ms == done["latency_ms"] and assistant.first_token_ms == done["first_token_ms"]
    assert claude.last_request.stream is True


def test_the_customers_turn_is_stored_before_claude_is_called(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    response = post_chat(client, conversation["id"], "Where is my booking?")
    frames = iter(response.streaming_content)
    name, data = parse_sse(next(frames).decode())[0]
    assert name == "start"
    user = Message.objects.get(pk=Message._meta.pk.to_python(data["user_message_id"]))
    assert (user.role, user.content) == (Role.USER, "Where is my booking?")
    assert claude.requests == [], "Claude is called only after the customer's turn is stored"
    rest = parse_sse(b"".join(frames).decode())
    assert rest[-1][0] == "done"
    assert len(claude.requests) == 1


def test_the_stream_is_unbuffered_server_sent_events(claude: FakeClaude, client: APIClient, conversation: dict) -> None:
    response = post_chat(client, conversation["id"], "Hello")
    assert response.streaming
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    assert not response.has_header("Content-Length")
    assert b"".join(response.streaming_content).startswith(b"event: start\ndata: ")


def test_stream_false_returns_the_done_object_as_json(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(Reply(text="Happy to help.", input_tokens=12, output_tokens=4))
    response = post_chat(client, conversation["id"], "Hi", stream=False)
    assert response.status_code == 201
    body = response.json()
    assistant = messages_of(conversation)[-1]
    assert body["message_id"] == str(assistant.pk)
    assert body["text"] == "Happy to help."
    assert set(body) >= {
        "message_id",
        "user_message_id",
        "text",
        "escalated",
        "escalation_reason",
        "partial",
        "fallback",
        "latency_ms",
        "first_token_ms",
    }
    assert not {"model", "usage", "cost_micros", "cost_usd"} & set(body)
    assert claude.last_request.stream is True, "one code path: Claude's reply is streamed and collected"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="Plain answer.", cache_read_input_tokens=300),
        Reply(text="", tool_use={"name": "escalate_to_human", "input": {"reason": "x"}}),
        Reply(chunks=["Cut ", "off"], stream_error_after=1),
    ],
)
def test_the_done_object_matches_its_documented_serializer(
    claude: FakeClaude, staff: APIClient, conversation: dict, reply: Reply
) -> None:
    claude.enqueue(reply)
    response = post_chat(staff, conversation["id"], "Hello", stream=False)
    body = response.json()
    message = Message.objects.get(pk=Message._meta.pk.to_python(body["message_id"]))
    user_message = Message.objects.get(pk=Message._meta.pk.to_python(body["user_message_id"]))
    result = ChatResult(
        conversation=stored(conversation), user_message=user_message, message=message, fallback=body["fallback"]
    )
    assert json.loads(json.dumps(ChatApi.OutputSerializer(result).data)) == body


def test_staff_can_chat_without_the_conversation_token(
    claude: FakeClaude, staff: APIClient, conversation: dict
) -> None:
    assert done_of(chat_stream(staff, conversation["id"], "Test from staff"))["text"] == Reply.text


# --- The prompt ------------------------------------------------------------------------------
def test_the_prompt_caches_the_knowledge_base_and_uses_the_configured_model(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_CLAUDE_MAX_TOKENS = 321
    KnowledgeArticle.objects.create(title="Gift vouchers", keywords="voucher", answer="Vouchers last a year.")
    KnowledgeArticle.objects.create(title="Old offer", keywords="offer", answer="Half price in 2019.", active=False)
    chat_stream(client, conversation["id"], "Do vouchers expire?")

    body = claude.last_request.body
    assert body["model"] == MODEL
    assert body["max_tokens"] == 321
    assert "temperature" not in body, "API version 2026-10-21 refuses sampling parameters"
    [system] = body["system"]
    assert system["cache_control"] == {"type": "ephemeral"}
    [first] = body["messages"]
    *results, question = first["content"]
    sent = json.dumps(results)
    assert "Vouchers last a year." in sent and results[-1]["cache_control"] == {"type": "ephemeral"}
    assert "Half price in 2019." not in sent, "inactive articles stay out of the prompt"
    assert [tool["name"] for tool in body["tools"]] == ["escalate_to_human"]
    assert body["tools"][0]["input_schema"]["required"] == ["reason"]
    assert question == {"type": "text", "text": "Do vouchers expire?"}
    assert claude.last_request.api_key == API_KEY


def test_the_history_sent_is_the_last_turns_within_the_token_budget(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any
) -> None:
    for question in ("first question", "second question", "third question"):
        chat_stream(client, conversation["id"], question)
    settings.SUPPORT_CHAT_HISTORY_TURNS = 4
    chat_stream(client, conversation["id"], "fourth question")
    sent = claude.last_request.history
    # 4 turns back from the newest is an assistant reply; Claude's history must start with the customer.
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["third question", "fourth question"]

    settings.SUPPORT_CHAT_HISTORY_TURNS = 20
    settings.SUPPORT_CHAT_HISTORY_TOKENS = token_bound("fifth question") + token_bound(Reply.text)
    chat_stream(client, conversation["id"], "fifth question")
    assert claude.last_request.history == [{"role": "user", "content": "fifth question"}]


def test_a_history_that_ends_in_two_customer_turns_is_joined(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    services.message_log(conversation=stored(conversation), turns=[services.Turn(role=Role.USER, content="Hello?")])
    chat_stream(client, conversation["id"], "Anyone there?")
    assert claude.last_request.history == [{"role": "user", "content": "Hello?\n\nAnyone there?"}]


# --- Usage and cost --------------------------------------------------------------------------
def test_usage_and_cost_with_cache_tokens_are_stored(claude: FakeClaude, staff: APIClient, conversation: dict) -> None:
    claude.enqueue(
        Reply(text="First.", input_tokens=100, output_tokens=50, cache_creation_input_tokens=2000),
        Reply(text="Second.", input_tokens=120, output_tokens=40, cache_read_input_tokens=2000),
    )
    # Staff see the usage and cost in `done`; the widget does not.
    first = done_of(chat_stream(staff, conversation["id"], "one"))
    second = done_of(chat_stream(staff, conversation["id"], "two"))

    # Haiku: $1 input, $5 output, $1.25 5-minute cache write, $0.10 cache read per million tokens.
    first_cost = 100 * 1 + 50 * 5 + 2000 * 1.25
    second_cost = 120 * 1 + 40 * 5 + 2000 * 0.10
    assert first["usage"] == {
        "input_tokens": 100,
        "output_tokens": 50,
        "cache_read_tokens": 0,
        "cache_write_tokens": 2000,
    }
    assert first["cost_micros"] == round(first_cost)
    assert second["usage"]["cache_read_tokens"] == 2000
    assert second["cost_micros"] == round(second_cost)
    assert second["cost_usd"] == round(second_cost) / 1_000_000

    assistant = Message.objects.get(pk=Message._meta.pk.to_python(first["message_id"]))
    assert (assistant.input_tokens, assistant.output_tokens, assistant.cache_write_tokens) == (100, 50, 2000)
    assert assistant.price is not None and assistant.price.model == MODEL and not assistant.price_fallback
    customer_turns = [m for m in messages_of(conversation) if m.role == Role.USER]
    assert all(m.cost_micros == 0 and m.model == "" for m in customer_turns), "usage belongs to the reply"
    totals = stored(conversation)
    assert totals.cost_micros == round(first_cost) + round(second_cost)
    assert totals.total_cache_write_tokens == 2000 and totals.total_cache_read_tokens == 2000
    assert totals.message_count == 4


# --- Escalation rules ------------------------------------------------------------------------
def test_the_escalate_tool_flags_the_conversation_with_claudes_reason(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(
        Reply(
            text="I'll ask a colleague to look at your refund.",
            tool_use={"name": "escalate_to_human", "input": {"reason": "Customer wants a refund"}},
        )
    )
    done = done_of(chat_stream(client, conversation["id"], "I was charged twice"))
    assert done["escalated"] is True and done["escalation_reason"] == "bot_tool"
    # Claude's words, then when a person will reply (always open by default: within the target).
    assert (
        done["text"] == "I'll ask a colleague to look at your refund.\n\nA person will reply here within about an hour."
    )
    flagged = stored(conversation)
    assert (flagged.status, flagged.escalation_reason) == ("needs_review", "bot_tool")
    assert flagged.escalation_detail == "Customer wants a refund"
    assert messages_of(conversation)[-1].is_escalation is True
    assert TicketEvent.objects.filter(conversation=flagged, field="escalation_reason", new_value="bot_tool").exists()


def test_a_tool_call_without_text_still_tells_the_customer_someone_will_follow_up(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(Reply(text="", tool_use={"name": "escalate_to_human", "input": {"reason": "Bug report"}}))
    events = chat_stream(client, conversation["id"], "The calendar shows the wrong day")
    done = done_of(events)
    assert done["escalation_reason"] == "bot_tool"
    assert "passed this to our support team. A person will reply here within about an hour." in done["text"]
    assert deltas_of(events) == done["text"]


def test_an_empty_reply_is_answered_from_the_knowledge_base_and_still_costed(
    claude: FakeClaude, kb: None, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(Reply(text="", input_tokens=40, output_tokens=1))
    done = done_of(chat_stream(client, conversation["id"], "How do I get started?"))
    assert done["fallback"] is True
    assert done["text"] == KnowledgeArticle.objects.get(title="Getting started").answer
    assert reply_of(done).model == MODEL and reply_of(done).cost_micros == 40 * 1 + 1 * 5, "Claude billed the call"


def test_a_reply_that_gives_out_the_support_email_is_flagged(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_EMAIL = "help@example.org"
    claude.enqueue(Reply(text="Please write to Help@Example.org and we'll sort it."))
    done = done_of(chat_stream(client, conversation["id"], "My invoice is wrong"))
    assert (done["escalated"], done["escalation_reason"]) == (True, "support_email")


def test_a_reply_without_any_rule_leaves_the_conversation_auto_resolved(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(Reply(text="Bookings are on the calendar page."))
    done = done_of(chat_stream(client, conversation["id"], "Where do I see bookings?"))
    assert done["escalated"] is False
    assert stored(conversation).status == "auto_resolved"


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("Can I speak to a human?", True),
        ("I want to talk to a real person please", True),
        ("human please", True),
        ("Agent", True),
        ("I need an agent", True),
        ("Could you connect me to a representative", True),
        ("is there a live person I can chat with", True),
        ("How do I add a staff member?", False),
        ("Table for 4 persons on Friday", False),
        ("Is there a per person fee?", False),
        ("Do you have an agent app for my team?", False),
    ],
)
def test_it_recognises_a_request_for_a_person(text: str, asks: bool) -> None:
    assert customer_asks_for_human(text) is asks


def test_asking_for_a_person_flags_the_conversation_before_claude_answers(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    response = post_chat(client, conversation["id"], "Let me talk to a human")
    frames = iter(response.streaming_content)
    next(frames)  # start: the customer's turn is stored
    flagged = stored(conversation)
    assert (flagged.escalated, flagged.escalation_reason, flagged.status) == (True, "human_requested", "needs_review")
    done = done_of(parse_sse(b"".join(frames).decode()))
    assert done["escalation_reason"] == "human_requested"
    assert len(claude.requests) == 1, "Claude still answers the customer"


# --- Broken streams --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"stream_error_after": 2}, id="overloaded_error event"),
        pytest.param({"drop_after": 2}, id="dropped connection"),
        pytest.param({"chunk_delay": 3.0}, id="stalled stream"),
    ],
)
def test_a_stream_that_breaks_after_text_keeps_the_partial_reply_with_a_closing_line(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any, fault: dict
) -> None:
    settings.SUPPORT_CLAUDE_STALL_TIMEOUT_S = 0.5
    claude.enqueue(Reply(chunks=["Your booking ", "is on ", "Friday ", "at noon."], **fault))
    events = chat_stream(client, conversation["id"], "When is my booking?")
    done = done_of(events)
    assert done["partial"] is True and done["fallback"] is False
    # The stall comes before the second delta (chunk_delay), the others after the second.
    arrived = "Your booking " if "chunk_delay" in fault else "Your booking is on "
    assert done["text"] == arrived + CLOSING_LINE
    assert deltas_of(events) == done["text"], "the customer sees the closing line too"
    assistant = messages_of(conversation)[-1]
    assert assistant.is_partial is True and assistant.content == done["text"]
    assert assistant.input_tokens == 25, "message_start's usage is kept"
    assert assistant.output_tokens >= 1
    assert (done["escalated"], done["escalation_reason"]) == (True, "claude_unavailable")


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param([Reply(stream_error_after=0)], id="error event before any text"),
        pytest.param([Reply(drop_after=0)], id="dropped before any text"),
        pytest.param([Reply(status=529, retry_after=0.01)] * 3, id="529 after every retry"),
        pytest.param([Reply(status=500, retry_after=0.01)] * 3, id="500 after every retry"),
        pytest.param([Reply(status=429)] * 3, id="429 after every retry"),
        pytest.param([Reply(status=401)], id="rejected key"),
    ],
)
def test_a_failure_before_any_text_falls_back_to_the_knowledge_base(
    claude: FakeClaude, kb: None, client: APIClient, conversation: dict, replies: list[Reply]
) -> None:
    claude.enqueue(*replies)
    events = chat_stream(client, conversation["id"], "How much does it cost?")
    done = done_of(events)
    pricing = KnowledgeArticle.objects.get(title="Pricing and plans")
    assert done["fallback"] is True and done["partial"] is False
    assert done["text"] == pricing.answer == deltas_of(events)
    assert (done["escalated"], done["escalation_reason"]) == (True, "claude_unavailable")
    assert reply_of(done).model == "" and reply_of(done).cost_micros == 0
    assert len(claude.requests) == len(replies), "the SDK retried as configured"


def test_the_sdk_retries_429_and_529_before_the_reply_streams(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(Reply(status=429), Reply(status=529, retry_after=0.01), Reply(text="Third time lucky."))
    done = done_of(chat_stream(client, conversation["id"], "Hello"))
    assert done["text"] == "Third time lucky." and done["fallback"] is False
    assert [r.status for r in claude.requests] == [429, 529, 200]
    assert done["escalated"] is False


def test_no_retry_is_made_when_its_wait_would_pass_the_deadline(
    claude: FakeClaude, kb: None, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_CLAUDE_TIMEOUT_S = 2.0
    claude.enqueue(Reply(status=429, retry_after=60), Reply(text="Too late."))
    done = done_of(chat_stream(client, conversation["id"], "How much does it cost?"))
    assert done["fallback"] is True and done["escalation_reason"] == "claude_unavailable"
    assert len(claude.requests) == 1


def test_a_reply_that_does_not_start_within_the_deadline_falls_back(
    claude: FakeClaude, kb: None, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_CLAUDE_TIMEOUT_S = 0.5
    claude.enqueue(Reply(delay=5.0, text="Much too slow."))
    done = done_of(chat_stream(client, conversation["id"], "How do I get started?"))
    assert done["fallback"] is True and done["escalation_reason"] == "claude_unavailable"
    assert done["text"] == KnowledgeArticle.objects.get(title="Getting started").answer
    assert len(claude.requests) == 1, "no second attempt once the deadline has passed"


def test_an_unreachable_claude_falls_back_to_the_knowledge_base(
    kb: None, client: APIClient, conversation: dict, settings: Any
) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.ANTHROPIC_API_KEY = API_KEY
    settings.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{port}"
    settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
    done = done_of(chat_stream(client, conversation["id"], "How do I contact you?"))
    assert done["fallback"] is True and done["escalation_reason"] == "claude_unavailable"
    assert done["text"] == KnowledgeArticle.objects.get(title="Contacting support").answer
    assert [m.role for m in messages_of(conversation)] == [Role.USER, Role.ASSISTANT]


def test_a_client_that_leaves_mid_stream_still_gets_its_partial_turn_stored(
    claude: FakeClaude, conversation: dict
) -> None:
    claude.enqueue(Reply(chunks=["One, ", "two, ", "three, ", "four."], chunk_delay=0.2))
    # The view itself, as the WSGI server sees it: no test-client wrapping around the streamed body.
    request = APIRequestFactory().post(
        f"{BASE}/conversations/{conversation['id']}/chat",
        {"message": "Count to four"},
        format="json",
        HTTP_X_CONVERSATION_TOKEN=conversation["token"],
        HTTP_IDEMPOTENCY_KEY="turn-1",
    )
    response = ChatApi.as_view()(request, conversation_id=conversation["id"])
    frames = iter(response.streaming_content)
    assert parse_sse(next(frames).decode())[0][0] == "start"
    assert parse_sse(next(frames).decode()) == [("delta", {"text": "One, "})]
    # What the WSGI server does when the browser goes away. (Keep the test's database connection open
    # through the request_finished signal that close() sends, as Django's test client does.)
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)

    _user, assistant = messages_of(conversation)
    assert (assistant.role, assistant.content, assistant.is_partial) == (Role.ASSISTANT, "One, ", True)
    assert assistant.input_tokens == 25 and assistant.output_tokens >= 1
    assert stored(conversation).message_count == 2
    assert stored(conversation).escalated is False, "the customer leaving is not a reason to escalate"
    record = IdempotencyRecord.objects.get(key="turn-1")
    assert record.response["message_id"] == str(assistant.pk), "a retry replays what was stored"


# --- Fallback without a key, and the budget --------------------------------------------------
def test_without_a_key_the_knowledge_base_answers(
    no_key: None, fake: FakeClaude, kb: None, client: APIClient, conversation: dict
) -> None:
    done = done_of(chat_stream(client, conversation["id"], "How do I get started?"))
    assert done["fallback"] is True
    assert done["text"] == KnowledgeArticle.objects.get(title="Getting started").answer
    assert done["escalated"] is False
    assert reply_of(done).model == "" and reply_of(done).cost_micros == 0
    assert messages_of(conversation)[-1].price is None
    assert fake.requests == []


def test_without_a_key_an_unanswerable_question_goes_to_a_person(
    no_key: None, kb: None, client: APIClient, conversation: dict
) -> None:
    done = done_of(chat_stream(client, conversation["id"], "Does the moon orbit Jupiter?"))
    assert done["fallback"] is True
    assert "passed your question to our support team" in done["text"]
    assert (done["escalated"], done["escalation_reason"]) == (True, "no_answer")


def test_past_the_daily_budget_the_knowledge_base_answers_and_the_conversation_is_flagged(
    claude: FakeClaude, kb: None, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_DAILY_BUDGET_USD = Decimal("1")
    DailySpend.objects.create(day=timezone.now().date(), spent_micros=1_000_000)  # the chat proxy spent $1 today
    done = done_of(chat_stream(client, conversation["id"], "How much does it cost?"))
    assert done["fallback"] is True
    assert done["text"] == KnowledgeArticle.objects.get(title="Pricing and plans").answer
    assert (done["escalated"], done["escalation_reason"]) == (True, "budget")
    assert claude.requests == []


def test_the_budget_counts_only_todays_utc_spend_and_includes_new_turns(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any
) -> None:
    tokens = budget.request_token_bound(
        system=system_prompt(articles=list(KnowledgeArticle.objects.filter(active=True))),
        messages=[{"role": "user", "content": "one"}],
        tools=[ESCALATE_TOOL],
    )
    worst = budget.call_worst_case_micros(model=MODEL, input_tokens=tokens)
    settings.SUPPORT_DAILY_BUDGET_USD = Decimal(2 * worst) / 1_000_000
    yesterday = timezone.now().date() - timedelta(days=1)
    DailySpend.objects.create(day=yesterday, spent_micros=100 * worst)

    # A third of the worst case each: after three calls the next worst case no longer fits in the cap.
    claude.default = Reply(text="Fine.", input_tokens=worst // 3, output_tokens=1)
    answers = [done_of(chat_stream(client, conversation["id"], q)) for q in ("one", "two", "three", "four")]
    assert [a["fallback"] for a in answers] == [False, False, False, True]
    assert answers[-1]["escalation_reason"] == "budget"
    assert len(claude.requests) == 3
    today = DailySpend.objects.get(day=timezone.now().date())
    assert (today.spent_micros, today.reserved_micros) == (sum(reply_of(a).cost_micros for a in answers), 0)


# --- Limits ----------------------------------------------------------------------------------
def assert_429(response: Any, reason: str) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert body["reason"] == reason
    assert body["retry_after"] > 0 and body["detail"]


def test_a_conversation_at_its_turn_limit_gets_429_max_turns(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_CHAT_MAX_TURNS = 4
    for question in ("one", "two"):
        chat_stream(client, conversation["id"], question)
    assert_429(post_chat(client, conversation["id"], "three"), "max_turns")
    assert stored(conversation).message_count == 4
    assert len(claude.requests) == 2


def test_messages_per_minute_in_one_conversation_get_429(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_THROTTLE_CONVERSATION_RATE = "2/min"
    for question in ("one", "two"):
        chat_stream(client, conversation["id"], question)
    assert_429(post_chat(client, conversation["id"], "three"), "conversation")
    assert stored(conversation).message_count == 4


def test_calls_per_client_ip_get_429(claude: FakeClaude, client: APIClient, conversation: dict, settings: Any) -> None:
    settings.SUPPORT_THROTTLE_IP_RATE = "1/min"
    chat_stream(client, conversation["id"], "one", REMOTE_ADDR="10.1.1.1")
    assert_429(post_chat(client, conversation["id"], "two", REMOTE_ADDR="10.1.1.1"), "widget_ip")
    chat_stream(client, conversation["id"], "from elsewhere", REMOTE_ADDR="10.1.1.2")


def test_new_conversations_per_client_ip_get_429(anon: APIClient, settings: Any) -> None:
    settings.SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE = "1/hour"
    assert anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.2.2.2").status_code == 201
    assert_429(anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.2.2.2"), "conversation_create")


def test_an_overlong_message_is_refused_400_naming_the_field(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_MAX_MESSAGE_CHARS = 10
    response = post_chat(client, conversation["id"], "x" * 11)
    assert response.status_code == 400
    assert "10 characters" in response.json()["errors"]["message"][0]
    assert post_chat(client, conversation["id"], "x" * 10, stream=False).status_code == 201
    assert stored(conversation).message_count == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": None}, "message"),
        ({"message": "hi", "stream": "sometimes"}, "stream"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    claude: FakeClaude, client: APIClient, conversation: dict, body: dict, field: str
) -> None:
    response = client.post(f"{BASE}/conversations/{conversation['id']}/chat", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Message.objects.count() == 0 and claude.requests == []


def test_it_needs_the_conversations_token(
    anon: APIClient, widget: Any, conversation: dict, make_conversation: Any
) -> None:
    assert post_chat(anon, conversation["id"], "hi").status_code == 404
    _, other_token = make_conversation()
    assert post_chat(widget(other_token), conversation["id"], "hi").status_code == 404
    assert post_chat(anon, "no-such-id", "hi").status_code == 404
    assert Message.objects.count() == 0


# --- Idempotency -----------------------------------------------------------------------------
def test_a_retried_turn_is_replayed_without_calling_claude_again(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(Reply(text="The answer."))
    first = post_chat(client, conversation["id"], "Question", stream=False, HTTP_IDEMPOTENCY_KEY="turn-7")
    again = post_chat(client, conversation["id"], "Question", stream=False, HTTP_IDEMPOTENCY_KEY="turn-7")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()

    replay = post_chat(client, conversation["id"], "Question", HTTP_IDEMPOTENCY_KEY="turn-7")
    events = parse_sse(b"".join(replay.streaming_content).decode())
    assert [name for name, _ in events] == ["start", "delta", "done"]
    assert events[0][1] == {"user_message_id": first.json()["user_message_id"]}
    assert deltas_of(events) == "The answer."
    assert done_of(events) == first.json()

    assert len(claude.requests) == 1
    assert stored(conversation).message_count == 2

    other = post_chat(client, conversation["id"], "Another question", stream=False, HTTP_IDEMPOTENCY_KEY="turn-7")
    assert other.status_code == 400 and "Idempotency-Key" in other.json()["errors"]


def test_a_turn_still_running_answers_409(claude: FakeClaude, client: APIClient, conversation: dict) -> None:
    services.idempotency_claim(
        conversation=stored(conversation), key="turn-8", fingerprint=services.request_fingerprint({"message": "Hi"})
    )
    response = post_chat(client, conversation["id"], "Hi", HTTP_IDEMPOTENCY_KEY="turn-8")
    assert response.status_code == 409 and response["Retry-After"] == "1"
    assert claude.requests == []


def test_a_refused_turn_frees_its_idempotency_key(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any
) -> None:
    settings.SUPPORT_CHAT_MAX_TURNS = 2
    chat_stream(client, conversation["id"], "one")
    assert post_chat(client, conversation["id"], "two", HTTP_IDEMPOTENCY_KEY="turn-9").status_code == 429
    assert not IdempotencyRecord.objects.filter(key="turn-9").exists()


# --- Secrets ---------------------------------------------------------------------------------
def test_the_api_key_never_appears_in_any_response(
    claude: FakeClaude, kb: None, anon: APIClient, staff: APIClient, settings: Any
) -> None:
    settings.SUPPORT_CLAUDE_STALL_TIMEOUT_S = 0.5
    claude.enqueue(
        Reply(text="Fine."),
        Reply(status=401, error_message=f"invalid x-api-key {API_KEY}"),
        Reply(status=400, error_message=f"bad request with key {API_KEY}"),
        Reply(chunks=["a", "b"], stream_error_after=1, error_message=f"overloaded {API_KEY}"),
        Reply(chunks=["a", "b"], drop_after=1),
        *[Reply(status=529, retry_after=0.01, error_message=API_KEY)] * 3,
    )
    bodies: list[bytes] = []
    created = anon.post(f"{BASE}/conversations", {}, format="json")
    bodies.append(created.content)
    conversation = created.json()
    client = APIClient()
    client.credentials(HTTP_X_CONVERSATION_TOKEN=conversation["token"])
    for index in range(6):
        response = post_chat(client, conversation["id"], f"question {index}")
        bodies.append(b"".join(response.streaming_content))
        bodies.append(str(response.headers).encode())
    response = post_chat(client, conversation["id"], "again", stream=False)
    bodies.append(response.content)
    for url in (f"{BASE}/conversations/{conversation['id']}", f"{BASE}/tickets", f"{BASE}/conversations"):
        bodies.append(staff.get(url).content)
    bodies.append(client.get(f"{BASE}/conversations/{conversation['id']}").content)

    assert len(claude.requests) >= 8
    assert all(r.api_key == API_KEY for r in claude.requests), "the server did use the key"
    for body in bodies:
        assert API_KEY.encode() not in body
        assert b"sk-ant" not in body


def test_the_openapi_schema_documents_the_chat_operation(anon: APIClient) -> None:
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/support/conversations/{conversation_id}/chat"]["post"]
    assert operation["operationId"] == "chat"
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    shapes = operation["responses"]["201"]["content"]["application/json"]["schema"]["anyOf"]
    # Issue 12: while a person owns the conversation the answer is ChatHumanOutput (no bot text).
    assert [shape["$ref"].rsplit("/", 1)[-1] for shape in shapes] == [
        "ChatOutput",
        "ChatWidgetOutput",
        "ChatHumanOutput",
    ]
    widget = schema["components"]["schemas"]["ChatWidgetOutput"]["properties"]
    assert "text" in widget and not {"model", "usage", "cost_micros", "cost_usd"} & set(widget)


def test_the_shipped_gunicorn_config_streams_on_threads_and_never_queues_behind_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GUNICORN_THREADS", "GUNICORN_WORKER_CONNECTIONS", "GUNICORN_KEEPALIVE"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    assert config["worker_class"] == "rezvo_support.gunicorn_worker.ThreadWorker"  # gthread's subclass
    # A worker with every thread busy streaming stops accepting, so other calls go to a free worker.
    assert config["worker_connections"] == config["threads"] >= 8
    assert config["keepalive"] == 0


def test_production_sqlite_keeps_each_threads_connection_between_requests(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URI", "SQLITE_CONN_MAX_AGE"}}
    env.update(DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="x.io", SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    code = "from django.conf import settings; print(settings.DATABASES['default']['CONN_MAX_AGE'])"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1] == "600", result.stderr


def test_chat_turns_reach_the_analytics_rollups_as_a_rebuild_would_count_them(
    claude: FakeClaude, client: APIClient, conversation: dict[str, Any], staff: APIClient
) -> None:
    from tests.services.test_rollups import snapshot

    claude.enqueue(Reply(text="Plans start at £0.", input_tokens=40, output_tokens=12, cache_read_input_tokens=300))
    done_of(chat_stream(client, conversation["id"], "How much is it?"))
    post_chat(client, conversation["id"], "And for teams?", stream=False)

    live = snapshot()
    analytics = staff.get(f"{BASE}/analytics?days=1").json()
    assert analytics["total_messages"] == 4
    assert analytics["total_cost_micros"] == stored(conversation).cost_micros > 0
    assert analytics["by_model"][0]["conversations"] == 1
    services.rollups_rebuild()
    assert snapshot() == live
