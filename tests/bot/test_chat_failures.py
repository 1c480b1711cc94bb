"""Failures after Claude has answered: the database away mid-stream, the client leaving, max_tokens.

The database goes away for real on SQLite: another connection holds BEGIN EXCLUSIVE on the file while the
reply streams (with a short busy timeout, as a lock longer than SQLITE_BUSY_TIMEOUT_S would be). On the
MongoDB leg the same window is made by failing the writes of Django's query layer (as tests/e2e/test_faults.py
does), since one SecantusDB cannot be locked from outside.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.db.models import QuerySet
from django.test import Client
from pymongo.errors import AutoReconnect
from rest_framework.test import APIClient, APIRequestFactory

from support import db
from support.api.chat import ChatApi
from support.bot.tokens import estimate_tokens
from support.bot.turn import CLOSING_LINE
from support.models import Conversation, IdempotencyRecord, Message, Role
from tests.bot.test_chat import API_KEY, BASE, MODEL, deltas_of, parse_sse, post_chat
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db(transaction=True)
ON_MONGODB = bool(os.environ.get("MONGODB_URI"))
CHUNKS = ["Our plans ", "start at ", "nine pounds ", "a month."]


@pytest.fixture
def claude(settings: Any) -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        settings.ANTHROPIC_API_KEY = API_KEY
        settings.ANTHROPIC_BASE_URL = fake.base_url
        settings.SUPPORT_CLAUDE_MODEL = MODEL
        settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
        settings.SUPPORT_CHAT_STORE_RETRY_S = 15.0
        yield fake


@pytest.fixture
def conversation(anon: APIClient) -> dict[str, Any]:
    response = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json")
    return response.json()


@pytest.fixture
def client(conversation: dict[str, Any], widget: Any) -> APIClient:
    return widget(conversation["token"])


def stored(conversation: dict[str, Any]) -> Conversation:
    return Conversation.objects.get(pk=Conversation._meta.pk.to_python(conversation["id"]))


def turns(conversation: dict[str, Any]) -> list[Message]:
    return list(Message.objects.filter(conversation=stored(conversation)).order_by("created_at", "pk"))


@contextlib.contextmanager
def database_away(seconds: float, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Thread]:
    """Every write fails (or waits out the busy timeout and fails) for `seconds` from now."""
    if ON_MONGODB:
        until = time.monotonic() + seconds
        real_update, real_bulk = QuerySet.update, QuerySet.bulk_create

        def failing(real: Any) -> Any:
            def write(self: QuerySet, *args: Any, **kwargs: Any) -> Any:
                if time.monotonic() < until:
                    raise AutoReconnect("connection closed")
                return real(self, *args, **kwargs)

            return write

        monkeypatch.setattr(QuerySet, "update", failing(real_update))
        monkeypatch.setattr(QuerySet, "bulk_create", failing(real_bulk))
        monkeypatch.setattr(db, "row_update", failing(db.row_update))  # the counters' update
        monkeypatch.setattr(db, "rows_insert", failing(db.rows_insert))  # the turns' insert
        timer = threading.Thread(target=time.sleep, args=(seconds,))
        timer.start()
        yield timer
        return
    locked = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(seconds)
        other.execute("ROLLBACK")
        other.close()

    connection.ensure_connection()
    connection.connection.execute("PRAGMA busy_timeout = 100")  # a lock longer than the busy timeout
    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(5)
    yield holder


def stream_with_outage(client: APIClient, conversation: dict, seconds: float, mp: pytest.MonkeyPatch, **extra: Any):
    """Stream a reply; once its first delta is out, the database goes away for `seconds`."""
    response = post_chat(client, conversation["id"], "How much does Rezvo cost?", **extra)
    assert response.status_code == 200
    frames = iter(response.streaming_content)
    body = [next(frames), next(frames)]  # start, first delta
    with database_away(seconds, mp) as outage:
        body.extend(frames)
    outage.join()
    return parse_sse(b"".join(body).decode())


def test_a_reply_is_stored_once_the_database_is_back_and_the_stream_ends_with_done(
    claude: FakeClaude, client: APIClient, conversation: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    claude.enqueue(Reply(chunks=CHUNKS, chunk_delay=0.05, input_tokens=45, output_tokens=105))
    events = stream_with_outage(client, conversation, 2.0, monkeypatch, HTTP_IDEMPOTENCY_KEY="turn-1")

    assert events[-1][0] == "done", events
    assert deltas_of(events) == "".join(CHUNKS)
    user, reply = turns(conversation)
    assert (user.role, reply.role, reply.content) == (Role.USER, Role.ASSISTANT, "".join(CHUNKS))
    assert reply.cost_micros == 570, "45 + 105 tokens on Haiku"
    saved = stored(conversation)
    assert (saved.message_count, saved.cost_micros) == (2, 570), "its cost counts"
    assert IdempotencyRecord.objects.get(key="turn-1").response["message_id"] == str(reply.pk)


def test_a_database_away_past_the_retry_window_ends_with_an_error_and_the_same_key_resumes_once(
    claude: FakeClaude, client: APIClient, conversation: dict, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SUPPORT_CHAT_STORE_RETRY_S = 0.3
    claude.enqueue(Reply(chunks=CHUNKS, chunk_delay=0.05), Reply(text="Nine pounds a month."))
    events = stream_with_outage(client, conversation, 2.0, monkeypatch, HTTP_IDEMPOTENCY_KEY="turn-2")
    monkeypatch.undo()

    name, data = events[-1]
    assert name == "error" and data["retry"] is True and data["message"], events
    assert [m.role for m in turns(conversation)] == [Role.USER], "the customer's turn stays; no reply was stored"
    record = IdempotencyRecord.objects.get(key="turn-2")
    assert record.response is None, "a key whose customer turn is stored is never released"

    retry = parse_sse(
        b"".join(
            post_chat(
                client, conversation["id"], "How much does Rezvo cost?", HTTP_IDEMPOTENCY_KEY="turn-2"
            ).streaming_content
        ).decode()
    )
    assert retry[0][0] == "start" and retry[-1][0] == "done", retry
    user, reply = turns(conversation)
    assert retry[0][1]["user_message_id"] == str(user.pk), "resumed: the stored customer turn is answered"
    assert reply.content == "Nine pounds a month." and retry[-1][1]["message_id"] == str(reply.pk)
    assert len(claude.requests) == 2
    sent = claude.requests[1].history
    assert sent[-1] == {"role": "user", "content": "How much does Rezvo cost?"} and len(sent) == 1
    assert stored(conversation).message_count == 2

    replay = post_chat(
        client, conversation["id"], "How much does Rezvo cost?", stream=False, HTTP_IDEMPOTENCY_KEY="turn-2"
    )
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["message_id"] == str(reply.pk)
    assert len(claude.requests) == 2 and len(turns(conversation)) == 2


def test_a_stored_reply_whose_key_was_never_completed_is_replayed_not_asked_again(
    claude: FakeClaude, client: APIClient, conversation: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    claude.enqueue(Reply(text="The answer."))
    real_update = QuerySet.update

    def update(self: QuerySet, **kwargs: Any) -> int:
        if self.model is IdempotencyRecord and "response" in kwargs:
            raise AutoReconnect("connection closed")  # the reply is stored, the key's completion is lost
        return real_update(self, **kwargs)

    monkeypatch.setattr(QuerySet, "update", update)
    monkeypatch.setattr("django.conf.settings.SUPPORT_CHAT_STORE_RETRY_S", 0.2)
    first = post_chat(client, conversation["id"], "Question", stream=False, HTTP_IDEMPOTENCY_KEY="turn-3")
    assert first.status_code == 201
    monkeypatch.undo()

    again = post_chat(client, conversation["id"], "Question", stream=False, HTTP_IDEMPOTENCY_KEY="turn-3")
    assert again.status_code == 201 and again.json()["message_id"] == first.json()["message_id"]
    assert len(claude.requests) == 1 and len(turns(conversation)) == 2


def test_a_client_that_leaves_mid_stream_leaves_a_partial_reply_and_the_replay_says_partial(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    claude.enqueue(Reply(chunks=CHUNKS, chunk_delay=0.2))
    request = APIRequestFactory().post(
        f"{BASE}/conversations/{conversation['id']}/chat",
        {"message": "How much does Rezvo cost?"},
        format="json",
        HTTP_X_CONVERSATION_TOKEN=conversation["token"],
        HTTP_IDEMPOTENCY_KEY="turn-4",
    )
    response = ChatApi.as_view()(request, conversation_id=conversation["id"])
    frames = iter(response.streaming_content)
    next(frames), next(frames)  # start, the first delta
    request_finished.disconnect(close_old_connections)
    try:
        response.close()  # the browser went away
    finally:
        request_finished.connect(close_old_connections)

    _user, reply = turns(conversation)
    assert reply.is_partial and reply.content == CHUNKS[0]
    replay = post_chat(client, conversation["id"], "How much does Rezvo cost?", HTTP_IDEMPOTENCY_KEY="turn-4")
    events = parse_sse(b"".join(replay.streaming_content).decode())
    assert events[-1][0] == "done" and events[-1][1]["partial"] is True and events[-1][1]["text"] == CHUNKS[0]


def test_a_reply_stopped_at_max_tokens_is_stored_as_truncated_and_shown_to_staff(
    claude: FakeClaude, client: APIClient, conversation: dict, staff_user: Any
) -> None:
    claude.enqueue(Reply(text="Our plans start at", stop_reason="max_tokens"))
    response = post_chat(client, conversation["id"], "How much does Rezvo cost?", stream=False)
    assert response.status_code == 201
    _user, reply = turns(conversation)
    assert reply.is_truncated and not reply.is_partial
    browser = Client()
    browser.force_login(staff_user)
    page = browser.get(f"/dashboard/conversations/{conversation['id']}/")
    assert "truncated at max_tokens" in page.content.decode()


def test_a_broken_replys_estimated_output_tokens_leave_out_our_closing_line(
    claude: FakeClaude, client: APIClient, conversation: dict
) -> None:
    words = ["x" * 40, "y" * 40, "z" * 40]
    claude.enqueue(Reply(chunks=words, output_tokens=1, drop_after=2))
    response = post_chat(client, conversation["id"], "Tell me everything", stream=False)
    assert response.status_code == 201
    _user, reply = turns(conversation)
    assert reply.is_partial and reply.content.endswith(CLOSING_LINE)
    assert reply.output_tokens == estimate_tokens(words[0] + words[1]) == 20
