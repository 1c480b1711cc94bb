"""The chat proxy while a person owns the conversation (handled_by=human), and after they hand it back:
the bot is silent, Claude gets no request and nothing is spent; afterwards Claude sees the person's words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from support import services
from support.bot import prompt
from support.models import Conversation, DailySpend, HandledBy, Message, Role, Status
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db

BASE = "/api/support"


@pytest.fixture
def claude(settings: Any) -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        settings.ANTHROPIC_API_KEY = "sk-ant-test-secret-key-0123456789"
        settings.ANTHROPIC_BASE_URL = fake.base_url
        settings.SUPPORT_CLAUDE_MODEL = "claude-haiku-4-5"
        settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
        yield fake


@pytest.fixture
def sam(staff_user: Any) -> Any:
    staff_user.first_name = "Sam"
    staff_user.save()
    return staff_user


@pytest.fixture
def started(make_conversation: Any, widget: Any) -> tuple[Conversation, APIClient]:
    conversation, token = make_conversation()
    return conversation, widget(token)


def _chat(client: APIClient, conversation: Conversation, text: str, **extra: Any) -> Any:
    body: dict[str, Any] = {"message": text}
    if "stream" in extra:
        body["stream"] = extra.pop("stream")
    return client.post(f"{BASE}/conversations/{conversation.pk}/chat", body, format="json", **extra)


def _events(response: Any) -> list[tuple[str, dict[str, Any]]]:
    assert response.status_code == 200, getattr(response, "content", b"")
    text = b"".join(response.streaming_content).decode()
    frames = [dict(line.split(": ", 1) for line in f.split("\n")) for f in text.split("\n\n") if f.strip()]
    return [(frame["event"], json.loads(frame["data"])) for frame in frames]


@pytest.mark.parametrize("status", [Status.NEEDS_REVIEW, Status.CLOSED])
def test_while_a_person_owns_it_the_turn_is_stored_and_claude_gets_no_request(
    claude: FakeClaude, started: Any, sam: Any, status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation, client = started
    services.conversation_reply(conversation=conversation, author=sam, content="Sam here, looking now.")
    services.conversation_update(conversation=conversation, actor=sam, changes={"status": status})
    reserved: list[Any] = []
    monkeypatch.setattr(services.budget, "daily_spend_reserve", lambda **kw: reserved.append(kw))

    response = _chat(client, conversation, "Thanks, any news?", stream=False)

    assert response.status_code == 201, response.content
    user = Message.objects.get(conversation=conversation, role=Role.USER)
    assert response.json() == {
        "handled_by": "human",
        "user_message_id": str(user.pk),
        "agent": {"name": "Sam", "initial": "S"},
        "text": "",
    }
    assert claude.requests == [] and reserved == []
    assert not DailySpend.objects.exists()
    assert list(Message.objects.filter(conversation=conversation).values_list("role", flat=True)) == ["agent", "user"]
    conversation.refresh_from_db()
    assert (conversation.cost_micros, conversation.total_input_tokens, conversation.message_count) == (0, 0, 2)
    assert conversation.status == status  # the turn waits for the person; the status is theirs to change
    assert conversation.customer_last_seen_at is not None


def test_the_stream_while_a_person_owns_it_is_start_then_done_without_bot_text(
    claude: FakeClaude, started: Any, staff_user: Any
) -> None:
    conversation, client = started
    services.conversation_handoff(conversation=conversation, handled_by=HandledBy.HUMAN, actor=staff_user)

    events = _events(_chat(client, conversation, "Hello?"))

    user = Message.objects.get(conversation=conversation)
    assert events == [
        ("start", {"user_message_id": str(user.pk)}),
        ("done", {"handled_by": "human", "user_message_id": str(user.pk), "agent": None, "text": ""}),
    ]
    assert claude.requests == []


def test_a_retry_with_the_same_key_replays_the_answer_and_stores_the_turn_once(
    claude: FakeClaude, started: Any, sam: Any
) -> None:
    conversation, client = started
    services.conversation_reply(conversation=conversation, author=sam, content="Hi")

    first = _chat(client, conversation, "Still there?", stream=False, HTTP_IDEMPOTENCY_KEY="turn-1")
    again = _chat(client, conversation, "Still there?", stream=False, HTTP_IDEMPOTENCY_KEY="turn-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Message.objects.filter(conversation=conversation, role=Role.USER).count() == 1
    assert claude.requests == []


def test_after_hand_back_the_bot_answers_and_claude_reads_the_persons_turn_as_the_support_teams(
    claude: FakeClaude, started: Any, sam: Any, staff: APIClient
) -> None:
    conversation, client = started
    claude.enqueue(Reply(text="Let me get someone.", input_tokens=10, output_tokens=5))
    _chat(client, conversation, "I was charged twice", stream=False)
    staff.post(f"{BASE}/conversations/{conversation.pk}/replies", {"content": "Refund issued today."}, format="json")
    _chat(client, conversation, "Thank you!", stream=False)
    assert len(claude.requests) == 1
    staff.patch(f"{BASE}/conversations/{conversation.pk}", {"handled_by": "bot"}, format="json")
    claude.enqueue(Reply(text="It shows in 3-5 days.", input_tokens=10, output_tokens=5))

    response = _chat(client, conversation, "When will I see it?", stream=False)

    assert response.status_code == 201 and response.json()["text"] == "It shows in 3-5 days."
    body = claude.requests[-1].body
    assert claude.requests[-1].history == [
        {"role": "user", "content": "I was charged twice"},
        {"role": "assistant", "content": "Let me get someone.\n\n[Support team — Sam]: Refund issued today."},
        {"role": "user", "content": "Thank you!\n\nWhen will I see it?"},
    ]
    assert prompt.AGENT_MARKER_START in body["system"][0]["text"]


def test_a_persons_reply_first_in_the_conversation_still_leaves_claudes_history_starting_with_the_customer(
    claude: FakeClaude, started: Any, sam: Any
) -> None:
    conversation, client = started
    services.conversation_reply(conversation=conversation, author=sam, content="Hi, can I help?", hand_back=True)

    _chat(client, conversation, "Yes, opening hours?", stream=False)

    assert claude.requests[-1].history == [{"role": "user", "content": "Yes, opening hours?"}]


def test_a_bot_conversation_answers_after_close_as_before(claude: FakeClaude, started: Any, staff_user: Any) -> None:
    conversation, client = started
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": Status.CLOSED})

    response = _chat(client, conversation, "One more question", stream=False)

    assert response.status_code == 201 and response.json()["text"] == "Hello from fake Claude."
    assert len(claude.requests) == 1


def test_a_reply_whose_author_was_deleted_still_reads_as_the_support_teams(started: Any, staff_user: Any) -> None:
    conversation, _ = started
    turn = services.Turn(role=Role.USER, content="Hi", priced=False)
    services.message_log(conversation=conversation, turns=[turn])
    services.conversation_reply(conversation=conversation, author=staff_user, content="Hello!", hand_back=True)
    staff_user.delete()
    services.message_log(conversation=conversation, turns=[services.Turn(role=Role.USER, content="Ok", priced=False)])

    assert prompt.history_messages(conversation=conversation) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "[Support team — a colleague]: Hello!"},
        {"role": "user", "content": "Ok"},
    ]
