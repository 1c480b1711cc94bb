"""The fake Messages API behaves like the real one as far as the real SDK can tell."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import anthropic
import httpx2
import pytest
from anthropic.lib.streaming import MessageStreamManager

from tests.fakes.fake_claude import FakeClaude, Reply

MODEL = "claude-test-model"
MESSAGES = [{"role": "user", "content": "Where is my booking?"}]


@pytest.fixture
def fake() -> Iterator[FakeClaude]:
    with FakeClaude() as server:
        yield server


@pytest.fixture
def client(fake: FakeClaude) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-key", base_url=fake.base_url, max_retries=0)


def create(client: anthropic.Anthropic, **kwargs: object) -> anthropic.types.Message:
    params: dict[str, object] = {
        "model": MODEL,
        "max_tokens": 256,
        "messages": MESSAGES,
    }
    params.update(kwargs)
    return client.messages.create(**params)  # type: ignore[call-overload]


def stream(client: anthropic.Anthropic, **kwargs: object) -> MessageStreamManager:
    return client.messages.stream(
        model=MODEL,
        max_tokens=256,
        messages=MESSAGES,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def raw_sse_events(fake: FakeClaude, body: dict[str, object]) -> list[tuple[str, dict]]:
    """POST with the stdlib and parse the SSE frames, pings included."""
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=5)
    try:
        headers = {"content-type": "application/json", "x-api-key": "k"}
        conn.request("POST", "/v1/messages", json.dumps(body), headers)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("content-type", "").startswith("text/event-stream")
        text = response.read().decode()
    finally:
        conn.close()
    events = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_it_returns_text_and_usage_with_cache_tokens_without_streaming(
    fake: FakeClaude, client: anthropic.Anthropic
) -> None:
    fake.enqueue(
        Reply(
            text="Your booking is on Friday.",
            input_tokens=40,
            output_tokens=9,
            cache_creation_input_tokens=1200,
            cache_read_input_tokens=3400,
        )
    )

    message = create(client)

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Your booking is on Friday."
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.input_tokens == 40
    assert message.usage.output_tokens == 9
    assert message.usage.cache_creation_input_tokens == 1200
    assert message.usage.cache_read_input_tokens == 3400


def test_it_records_each_request_with_its_body_and_headers(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    create(client, system="You are Rezvo support.")

    [request] = fake.requests
    assert request.path == "/v1/messages"
    assert request.body["model"] == MODEL
    assert request.body["system"] == "You are Rezvo support."
    assert request.body["messages"] == MESSAGES
    assert request.headers["anthropic-version"]
    # SDK 2.14 sends the api_key as a bearer token, not as x-api-key.
    assert request.api_key == "test-key"
    assert request.stream is False
    assert request.status == 200


def test_it_falls_back_to_the_default_reply_when_the_queue_is_empty(
    fake: FakeClaude, client: anthropic.Anthropic
) -> None:
    fake.default = Reply(text="default", model="claude-reported")
    fake.enqueue(Reply(text="first"))

    texts = [create(client).content[0].text for _ in range(3)]

    assert texts == ["first", "default", "default"]
    assert create(client).model == "claude-reported"
    assert fake.pending == 0


def test_it_streams_text_deltas_in_order(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(
        Reply(
            chunks=["Your ", "table ", "is ", "booked", "."],
            input_tokens=30,
            output_tokens=6,
            cache_creation_input_tokens=500,
            cache_read_input_tokens=2000,
        )
    )

    with stream(client) as events:
        deltas = list(events.text_stream)
        final = events.get_final_message()

    assert deltas == ["Your ", "table ", "is ", "booked", "."]
    assert final.content[0].text == "Your table is booked."
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 30
    assert final.usage.output_tokens == 6
    assert final.usage.cache_creation_input_tokens == 500
    assert final.usage.cache_read_input_tokens == 2000
    assert fake.last_request.stream is True
    assert len(fake.sent_at) == 5


def test_it_splits_text_into_word_deltas_by_default(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(text="Hello from fake Claude."))

    with stream(client) as events:
        deltas = list(events.text_stream)

    assert deltas == ["Hello", " from", " fake", " Claude."]


def test_it_sends_the_real_sse_event_sequence(fake: FakeClaude) -> None:
    fake.enqueue(
        Reply(
            chunks=["Let me ", "get a human."],
            tool_use={"name": "escalate_to_human", "input": {"reason": "refund"}},
            cache_read_input_tokens=7,
        )
    )

    events = raw_sse_events(
        fake,
        {"model": MODEL, "max_tokens": 64, "messages": MESSAGES, "stream": True},
    )

    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * (names.count("content_block_delta") - 2),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in events)
    start = events[0][1]["message"]
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["usage"]["output_tokens"] == 1
    assert start["usage"]["cache_read_input_tokens"] == 7
    tool_start = events[6][1]["content_block"]
    assert tool_start["type"] == "tool_use"
    assert tool_start["id"].startswith("toolu_")
    assert tool_start["input"] == {}
    partial_json = "".join(
        data["delta"]["partial_json"] for _, data in events if data.get("delta", {}).get("type") == "input_json_delta"
    )
    assert json.loads(partial_json) == {"reason": "refund"}
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"]["cache_read_input_tokens"] == 7


def test_it_parses_a_tool_use_block_with_its_input(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    tool = {"name": "escalate_to_human", "input": {"reason": "Customer asks"}}
    fake.enqueue(Reply(text="Connecting you.", tool_use=tool), Reply(tool_use=tool))

    message = create(client)
    with stream(client) as events:
        streamed = events.get_final_message()

    for result in (message, streamed):
        text, tool_use = result.content
        assert text.type == "text"
        assert tool_use.type == "tool_use"
        assert tool_use.id.startswith("toolu_")
        assert tool_use.name == "escalate_to_human"
        assert tool_use.input == {"reason": "Customer asks"}
        assert result.stop_reason == "tool_use"


def test_the_sdk_retries_a_429_and_then_succeeds(fake: FakeClaude) -> None:
    client = anthropic.Anthropic(api_key="k", base_url=fake.base_url, max_retries=1)
    fake.enqueue(Reply(status=429), Reply(text="after the retry"))

    message = create(client)

    assert message.content[0].text == "after the retry"
    assert [r.status for r in fake.requests] == [429, 200]
    retry_counts = [r.headers["x-stainless-retry-count"] for r in fake.requests]
    assert retry_counts == ["0", "1"]


def test_a_429_carries_a_retry_after_header_and_rate_limit_error(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(status=429, retry_after=3))

    with pytest.raises(anthropic.RateLimitError) as caught:
        create(client)

    assert caught.value.status_code == 429
    assert caught.value.type == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.request_id.startswith("req_")


def test_a_529_without_retries_raises_an_overloaded_error(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(status=529))

    with pytest.raises(anthropic.APIStatusError) as caught:
        create(client)

    assert isinstance(caught.value, anthropic.OverloadedError)
    assert caught.value.status_code == 529
    assert caught.value.body["error"] == {
        "type": "overloaded_error",
        "message": "Overloaded",
    }
    assert len(fake.requests) == 1


def test_a_500_raises_an_internal_server_error(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(status=500))

    with pytest.raises(anthropic.InternalServerError) as caught:
        create(client)

    assert caught.value.type == "api_error"


def test_a_mid_stream_error_event_raises_after_some_text(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(chunks=["one ", "two ", "three ", "four"], stream_error_after=2))
    received: list[str] = []

    with pytest.raises(anthropic.APIStatusError) as caught, stream(client) as events:
        received.extend(events.text_stream)

    assert received == ["one ", "two "]
    # The HTTP status was 200; the error comes from the SSE `error` event.
    assert caught.value.status_code == 200
    assert caught.value.type == "overloaded_error"


def test_a_dropped_connection_raises_after_some_text(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(chunks=["one ", "two ", "three ", "four"], drop_after=3))
    received: list[str] = []

    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        stream(client) as events,
    ):
        received.extend(events.text_stream)

    assert received == ["one ", "two ", "three "]


def test_a_slow_reply_beyond_the_client_timeout_raises_api_timeout_error(
    fake: FakeClaude, client: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(delay=2.0))
    started = time.monotonic()

    with pytest.raises(anthropic.APITimeoutError):
        create(client.with_options(timeout=0.3))

    assert time.monotonic() - started < 1.5


def test_a_missing_model_is_rejected_with_400(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(client, model=anthropic.omit)

    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    assert "model" in caught.value.api_message
    assert "model" not in fake.last_request.body


def test_a_missing_api_key_is_rejected_with_401(fake: FakeClaude) -> None:
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=5)
    body = {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}
    conn.request("POST", "/v1/messages", json.dumps(body))
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()

    assert response.status == 401
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "authentication_error"


def test_deltas_reach_the_client_as_soon_as_they_are_sent(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(chunks=["a", "b", "c", "d"], delay=0.1, chunk_delay=0.1))
    received_at: list[float] = []

    started = time.time()
    with stream(client) as events:
        for _ in events.text_stream:
            received_at.append(time.time())

    sent_at = fake.sent_at
    assert len(sent_at) == len(received_at) == 4
    assert sent_at[0] - started >= 0.1
    for sent, received in zip(sent_at, received_at, strict=True):
        assert 0 <= received - sent < 0.08
    # Not buffered: the first delta arrived well before the last one was sent.
    assert received_at[0] < sent_at[-1] - 0.2


def test_close_stops_the_server() -> None:
    fake = FakeClaude()
    address = (fake.host, fake.port)
    fake.close()
    fake.close()  # idempotent

    with pytest.raises(OSError), socket.create_connection(address, timeout=1):
        pass


# --- Citations (issue 14) --------------------------------------------------------------------
CITABLE = [
    {
        "role": "user",
        "content": [
            {
                "type": "search_result",
                "source": "kb:1",
                "title": "Pricing",
                "content": [{"type": "text", "text": "Plans start free."}],
                "citations": {"enabled": True},
            },
            {
                "type": "search_result",
                "source": "kb:2",
                "title": "Bookings",
                "content": [{"type": "text", "text": "Cancel from the calendar."}],
                "citations": {"enabled": True},
            },
            {"type": "text", "text": "How do I cancel?"},
        ],
    }
]


def test_a_json_reply_cites_search_results_as_the_sdk_parses_them(
    fake: FakeClaude, client: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(text="Cancel it from the calendar.", citations=[{"source": "kb:2"}]))
    [block] = create(client, messages=CITABLE).content
    assert block.type == "text"
    [citation] = block.citations or []
    assert citation.type == "search_result_location"
    assert (citation.source, citation.title, citation.search_result_index) == ("kb:2", "Bookings", 1)
    assert citation.cited_text == "Cancel from the calendar."


def test_a_streamed_reply_sends_citations_delta_events(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(text="Plans start free.", citations=[{"search_result_index": 0}]))
    with client.messages.stream(model=MODEL, max_tokens=256, messages=CITABLE) as events:  # type: ignore[arg-type]
        deltas = [event.delta for event in events if event.type == "content_block_delta"]
        final = events.get_final_message()
    [cited] = [delta.citation for delta in deltas if delta.type == "citations_delta"]
    assert (cited.type, cited.source) == ("search_result_location", "kb:1")
    assert "".join(delta.text for delta in deltas if delta.type == "text_delta") == "Plans start free."
    assert [c.source for c in final.content[0].citations or []] == ["kb:1"]  # type: ignore[union-attr]


def test_the_fake_never_cites_a_result_the_request_did_not_hold(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(text="Hm.", citations=[{"source": "kb:9"}, {"search_result_index": 5}]))
    [block] = create(client, messages=CITABLE).content
    assert not getattr(block, "citations", None)
