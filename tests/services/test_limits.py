"""Limits that hold under concurrency: turns per conversation, the daily Claude budget, the history sent.

Each race is run for real: many requests at once on threads (each with its own database connection),
the chat proxy talking to FakeClaude over HTTP through the real SDK.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.test import Client
from rest_framework.test import APIClient

from support import selectors, services
from support.bot import rules
from support.bot.prompt import ESCALATE_TOOL, system_prompt
from support.models import Conversation, DailySpend, Message, Role
from support.services import budget
from tests.api.test_throttles import in_parallel
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db
BASE = "/api/support"
API_KEY = "sk-ant-test-secret-key-0123456789"
MODEL = "claude-haiku-4-5"


@pytest.fixture(autouse=True)
def _widget_logging_and_streams(settings: Any) -> None:
    # These tests drive the seed widget's own logging, and many parallel chats from one test client IP:
    # the per-IP stream cap (tests/api/test_stream_slots.py) stays out of the way of the limit under test.
    settings.SUPPORT_CLIENT_LOGGING = "seed"
    settings.SUPPORT_STREAMS_PER_IP = 1_000_000
    settings.SUPPORT_STREAMS_PER_WORKER = 1_000_000


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeClaude]:
    with FakeClaude() as server:
        settings.ANTHROPIC_API_KEY = API_KEY
        settings.ANTHROPIC_BASE_URL = server.base_url
        settings.SUPPORT_CLAUDE_MODEL = MODEL
        settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
        settings.SUPPORT_CLAUDE_TIMEOUT_S = 20.0
        # Each limit is the one under test: the request-rate limits stay out of the way.
        settings.SUPPORT_THROTTLE_IP_RATE = "100000/min"
        settings.SUPPORT_THROTTLE_CONVERSATION_RATE = "100000/min"
        yield server


def chat_json(token: str, conversation_id: Any, text: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_X_CONVERSATION_TOKEN=token)
    return client.post(
        f"{BASE}/conversations/{conversation_id}/chat", {"message": text, "stream": False}, format="json"
    )


def assert_counters_match_messages(conversation: Conversation) -> None:
    conversation.refresh_from_db()
    stored = Message.objects.filter(conversation=conversation)
    assert conversation.message_count == stored.count()
    assert conversation.cost_micros == (stored.aggregate(total=Sum("cost_micros"))["total"] or 0)


# --- SUPPORT_CHAT_MAX_TURNS -------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_25_parallel_chats_store_no_more_than_the_turn_limit(
    fake: FakeClaude, make_conversation: Any, settings: Any
) -> None:
    settings.SUPPORT_CHAT_MAX_TURNS = 4
    fake.default = Reply(text="Sure.", delay=0.2)
    conversation, token = make_conversation()

    responses = in_parallel(25, lambda i: chat_json(token, conversation.pk, f"question {i}"))

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 2, statuses
    assert statuses.count(429) == 23
    assert {r.json()["reason"] for r in responses if r.status_code == 429} == {"max_turns"}
    assert Message.objects.filter(conversation=conversation).count() == 4
    assert_counters_match_messages(conversation)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "turns"),
    [({"role": "user", "content": "hi"}, 1), ({"user_message": "hi", "assistant_message": "hello"}, 2)],
    ids=["one-turn", "pair"],
)
def test_parallel_message_logging_stores_no_more_than_the_turn_limit(
    body: dict[str, Any], turns: int, make_conversation: Any, widget: Any, settings: Any
) -> None:
    settings.SUPPORT_CHAT_MAX_TURNS = 6
    settings.SUPPORT_THROTTLE_IP_RATE = settings.SUPPORT_THROTTLE_CONVERSATION_RATE = "100000/min"
    conversation, token = make_conversation()
    url = f"{BASE}/conversations/{conversation.pk}/messages"

    responses = in_parallel(25, lambda i: widget(token).post(url, body, format="json"))

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 6 // turns, statuses
    assert {r.json()["reason"] for r in responses if r.status_code == 429} == {"max_turns"}
    assert Message.objects.filter(conversation=conversation).count() == 6
    assert_counters_match_messages(conversation)


def test_a_retry_of_a_stored_turn_is_replayed_even_at_the_turn_limit(
    make_conversation: Any, widget: Any, settings: Any
) -> None:
    settings.SUPPORT_CHAT_MAX_TURNS = 2
    conversation, token = make_conversation()
    url = f"{BASE}/conversations/{conversation.pk}/messages"
    body = {"user_message": "hi", "assistant_message": "hello"}
    first = widget(token).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="turn-1")
    assert first.status_code == 201
    again = widget(token).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="turn-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    refused = widget(token).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="turn-2")
    assert refused.status_code == 429 and refused.json()["reason"] == "max_turns"
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_a_chat_that_fails_before_storing_gives_its_turns_back(
    make_conversation: Any, widget: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SUPPORT_CHAT_MAX_TURNS = 2
    settings.ANTHROPIC_API_KEY = ""
    conversation, token = make_conversation()

    def broken(text: str) -> bool:
        raise RuntimeError("the escalation rules could not run")

    # Fails before the customer's turn is stored, so on both databases nothing is.
    monkeypatch.setattr(rules, "customer_asks_for_human", broken)
    with pytest.raises(RuntimeError):
        chat_json(token, conversation.pk, "one")
    monkeypatch.undo()
    assert chat_json(token, conversation.pk, "two").status_code == 201
    assert Message.objects.filter(conversation=conversation).count() == 2


# --- SUPPORT_DAILY_BUDGET_USD -----------------------------------------------------------------
def worst_case_micros(text: str) -> int:
    articles = list(selectors.knowledge_article_list_active())
    tokens = budget.request_token_bound(
        system=system_prompt(articles=articles),
        messages=[{"role": "user", "content": text}],
        tools=[ESCALATE_TOOL],
    )
    return budget.call_worst_case_micros(model=MODEL, input_tokens=tokens)


@pytest.mark.django_db(transaction=True)
def test_40_parallel_chats_never_spend_more_than_the_cap_plus_one_call(
    fake: FakeClaude, make_conversation: Any, settings: Any
) -> None:
    settings.SUPPORT_CLAUDE_MAX_TOKENS = 300
    worst = worst_case_micros("question 10")
    cap_micros = 4 * worst
    settings.SUPPORT_DAILY_BUDGET_USD = Decimal(cap_micros) / 1_000_000
    # Each real call costs well under its worst case: about a tenth of the cap.
    fake.default = Reply(text="Sure.", input_tokens=400, output_tokens=300, delay=0.2)
    conversations = [make_conversation() for _ in range(40)]

    responses = in_parallel(40, lambda i: chat_json(conversations[i][1], conversations[i][0].pk, f"question {i:02}"))

    assert [r.status_code for r in responses] == [201] * 40
    answered_by_claude = [r.json() for r in responses if not r.json()["fallback"]]
    spent = sum(Message.objects.get(pk=body["message_id"]).cost_micros for body in answered_by_claude)
    assert answered_by_claude, "some chats must have been answered by Claude"
    assert spent <= cap_micros + worst, (spent, cap_micros, worst)
    assert len(fake.requests) == len(answered_by_claude)
    assert {r.json()["escalation_reason"] for r in responses if r.json()["fallback"]} <= {"budget"}
    row = DailySpend.objects.get()
    assert (row.spent_micros, row.reserved_micros) == (spent, 0), "every reservation was settled"


def test_usage_a_client_logs_never_spends_the_budget(
    fake: FakeClaude, make_conversation: Any, widget: Any, settings: Any
) -> None:
    settings.SUPPORT_DAILY_BUDGET_USD = Decimal("0.10")
    conversation, token = make_conversation()
    # A browser claiming Haiku's whole 64K output ($0.32, over the cap) on a turn it logs itself.
    body = {"role": "assistant", "content": "x", "model": MODEL, "output_tokens": 64_000}
    assert (
        widget(token).post(f"{BASE}/conversations/{conversation.pk}/messages", body, format="json").status_code == 201
    )
    response = chat_json(token, conversation.pk, "still there?")
    assert response.json()["fallback"] is False
    assert len(fake.requests) == 1


def test_a_failed_claude_call_releases_its_reservation(fake: FakeClaude, make_conversation: Any, settings: Any) -> None:
    settings.SUPPORT_DAILY_BUDGET_USD = Decimal("1")
    fake.enqueue(Reply(status=500))
    conversation, token = make_conversation()
    assert chat_json(token, conversation.pk, "hello").json()["fallback"] is True
    row = DailySpend.objects.get()
    assert (row.spent_micros, row.reserved_micros) == (0, 0)


def test_staff_are_warned_once_when_80_percent_of_the_budget_is_spent(
    fake: FakeClaude, make_conversation: Any, settings: Any, caplog: pytest.LogCaptureFixture, staff_user: Any
) -> None:
    settings.SUPPORT_CLAUDE_MAX_TOKENS = 100
    conversation, token = make_conversation()
    worst = worst_case_micros("turn")
    settings.SUPPORT_DAILY_BUDGET_USD = Decimal(5 * worst) / 1_000_000
    # Each call reports 2x its worst-case input: two calls pass 80% of the cap, the third is refused.
    fake.default = Reply(text="Sure.", input_tokens=2 * worst, output_tokens=100)
    dashboard = Client()
    dashboard.force_login(staff_user)
    assert "budget-warning" not in dashboard.get("/dashboard/").content.decode()
    with caplog.at_level(logging.WARNING, logger="support.services.budget"):
        fallbacks = [chat_json(token, conversation.pk, "turn").json()["fallback"] for _ in range(4)]
    assert fallbacks == [False, False, True, True]
    assert caplog.text.count("of today's Claude budget") == 1
    for page in ("/dashboard/", "/dashboard/analytics/"):
        html = dashboard.get(page).content.decode()
        assert "budget-warning" in html and "Claude budget is spent" in html, page


# --- The history sent to Claude ------------------------------------------------------------------
def test_the_history_is_bounded_by_bytes_so_emoji_cannot_smuggle_in_4x_the_tokens(
    fake: FakeClaude, make_conversation: Any
) -> None:
    conversation, token = make_conversation()
    # 20,000 characters: "5,000 tokens" at 4 characters a token, within the 8,000 allowed; but 80,000
    # UTF-8 bytes, and each emoji is a token or more.
    emoji = "\U0001f600" * 20_000
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content=emoji, priced=False),
            services.Turn(role=Role.ASSISTANT, content="Ha.", priced=False),
        ],
    )
    assert chat_json(token, conversation.pk, "and now?").status_code == 201
    sent = fake.last_request.history
    assert sent == [{"role": "user", "content": "and now?"}]


def test_the_newest_turn_is_always_sent_whatever_its_size(
    fake: FakeClaude, make_conversation: Any, settings: Any
) -> None:
    settings.SUPPORT_CHAT_HISTORY_TOKENS = 10
    conversation, token = make_conversation()
    emoji = "\U0001f600" * settings.SUPPORT_MAX_MESSAGE_CHARS
    assert chat_json(token, conversation.pk, emoji).status_code == 201
    assert fake.last_request.history == [{"role": "user", "content": emoji}]


@pytest.mark.django_db(transaction=True)
def test_the_first_reservations_of_a_day_made_at_once_all_fit_under_the_cap(settings: Any) -> None:
    # The day's row does not exist yet: each caller may find it created by another between its update and
    # its check, which must not read as "the cap refused".
    settings.SUPPORT_DAILY_BUDGET_USD = Decimal("100")
    results = in_parallel(24, lambda _i: budget.daily_spend_reserve(micros=1_000))
    assert all(result is not None for result in results)
    assert DailySpend.objects.get().reserved_micros == 24 * 1_000
