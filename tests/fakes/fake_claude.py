"""A local fake of Anthropic's Messages API, for tests that must never reach the internet.

Claude is faked at the HTTP boundary only: the real ``anthropic`` SDK is pointed at
this server with ``base_url``, so everything between our code and the socket (request
building, retries, SSE parsing, timeouts) is the real thing.

    with FakeClaude() as fake:
        fake.enqueue(Reply(text="Hi there", cache_read_input_tokens=100))
        client = anthropic.Anthropic(api_key="test-key", base_url=fake.base_url)
        client.messages.create(model="claude-x", max_tokens=64, messages=[...])
        assert fake.requests[0].body["model"] == "claude-x"

Each ``POST /v1/messages`` takes the next queued ``Reply`` (``fake.enqueue``), or
``fake.default`` when the queue is empty. Replies can script errors (429/529/500...),
slow starts, slow token streams, an SSE ``error`` event mid-stream and a dropped
connection mid-stream.

Streaming responses use HTTP/1.1 chunked transfer encoding plus ``Connection: close``:
chunked framing is what lets the client tell a dropped connection (no terminating
chunk) from a finished one, and closing after every response keeps shutdown simple.
Every SSE frame is written with a single ``sendall`` on a ``TCP_NODELAY`` socket, so
it leaves the process immediately.

Run standalone (benchmarks, manual demos)::

    python -m tests.fakes.fake_claude --port 8765 --delay 0.2 --chunk-delay 0.05

Out-of-band control endpoints (no auth, not recorded): ``GET /_fake/requests``
(recorded requests as JSON), ``POST /_fake/replies`` (enqueue one reply object or a
list of them, fields as in ``Reply``), ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["ERROR_TYPES", "FakeClaude", "RecordedRequest", "Reply"]

MESSAGES_PATH = "/v1/messages"

#: HTTP status -> Anthropic ``error.type`` used when ``Reply.error_type`` is not set.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_ERROR_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use this resource.",
    "not_found_error": "Not found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": ("This request would exceed the rate limit for your organization of 50 requests per minute."),
    "api_error": "Internal server error",
    "timeout_error": "Request timed out.",
    "overloaded_error": "Overloaded",
}

# Default ``retry-after`` (seconds) sent with a 429 when ``Reply.retry_after`` is
# unset. The real API sends whole seconds; the SDK honours fractional values too,
# and a tiny one keeps retrying tests fast.
DEFAULT_429_RETRY_AFTER = 0.01

_WORDS = re.compile(r"\s*\S+|\s+")


@dataclass
class Reply:
    """One scripted response of the fake.

    ``status`` other than 200 returns a real Anthropic error body
    ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``.
    The streaming faults (``stream_error_after``, ``drop_after``) count
    ``content_block_delta`` events (text deltas first, then tool-input deltas); a
    count past the last delta fires just before ``message_delta``.
    """

    text: str = "Hello from fake Claude."
    input_tokens: int = 25
    output_tokens: int = 12
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    #: Model reported back; ``None`` echoes the request's ``model``.
    model: str | None = None
    #: ``{"name": ..., "input": {...}}`` (optional ``"id"``): a tool_use block after
    #: the text, and stop_reason ``"tool_use"``.
    tool_use: dict[str, Any] | None = None
    #: Overrides the stop_reason (default ``"end_turn"``, or ``"tool_use"``).
    stop_reason: str | None = None
    status: int = 200
    #: ``error.type`` for an error status; default from ``ERROR_TYPES``.
    error_type: str | None = None
    error_message: str | None = None
    #: ``retry-after`` header in seconds; a 429 gets ``DEFAULT_429_RETRY_AFTER``.
    retry_after: float | None = None
    #: Extra response headers (e.g. ``{"x-should-retry": "false"}``).
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before sending anything (status line included).
    delay: float = 0.0
    #: Seconds to wait before each content_block_delta after the first.
    chunk_delay: float = 0.0
    #: Text deltas to send; replaces ``text`` with ``"".join(chunks)``. Default:
    #: ``text`` split into words, each with its leading whitespace.
    chunks: list[str] | None = None
    #: Streaming only: after N deltas send an SSE ``error`` event and end the stream.
    stream_error_after: int | None = None
    #: Streaming only: after N deltas close the socket without finishing the body.
    drop_after: int | None = None
    send_ping: bool = True
    #: Search results the text cites, each ``{"search_result_index": i}`` or ``{"source": "..."}`` naming
    #: one of the request's ``search_result`` blocks (in request order, as the API counts them). Cited as
    #: the API does: ``search_result_location`` citations on the text block (JSON), or ``citations_delta``
    #: events before its text deltas (streaming). A name the request does not hold is not cited.
    citations: list[dict[str, Any]] | None = None

    @property
    def full_text(self) -> str:
        return "".join(self.chunks) if self.chunks is not None else self.text

    def text_chunks(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return _WORDS.findall(self.text)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown Reply fields: {sorted(unknown)}")
        return cls(**data)


@dataclass
class RecordedRequest:
    """What the fake saw of one request, and when it answered."""

    method: str
    path: str
    #: Header names lower-cased.
    headers: dict[str, str]
    #: Parsed JSON body (``None`` if it was not JSON).
    body: Any
    #: ``time.time()`` when the request had been read.
    received_at: float
    stream: bool = False
    status: int | None = None
    reply: Reply | None = None
    #: ``time.time()`` right after the status line and headers were sent.
    headers_sent_at: float | None = None
    #: ``time.time()`` just before each content_block_delta frame was written.
    delta_sent_at: list[float] = field(default_factory=list)
    #: ``time.time()`` when the response was finished (or dropped).
    finished_at: float | None = None

    @property
    def api_key(self) -> str | None:
        """The credential sent, from ``x-api-key`` or ``Authorization: Bearer``."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    @property
    def history(self) -> list[dict[str, Any]]:
        """The request's ``messages`` without ``search_result`` blocks (the knowledge base sent with the
        first turn), a turn left with one text block written back as a plain string."""
        turns: list[dict[str, Any]] = []
        for message in (self.body or {}).get("messages") or []:
            content = message.get("content")
            if isinstance(content, list):
                content = [b for b in content if not (isinstance(b, dict) and b.get("type") == "search_result")]
                if len(content) == 1 and content[0].get("type") == "text":
                    content = content[0]["text"]
            turns.append({**message, "content": content})
        return turns

    @property
    def search_results(self) -> list[dict[str, Any]]:
        """The request's ``search_result`` blocks, in the order the API numbers them."""
        return _search_results(self.body)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reply"] = asdict(self.reply) if self.reply is not None else None
        return data


class _Aborted(Exception):
    """The fake is shutting down; stop answering."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeClaude


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeClaude/1.0"
    sys_version = ""
    server: _Server

    # -- plumbing ---------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def handle(self) -> None:
        try:
            super().handle()
        except (_Aborted, OSError):
            # The client went away (e.g. its timeout fired) or we are closing.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            super().log_message(format, *args)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.server.fake._stopping.wait(seconds):
            raise _Aborted

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(
        self,
        status: int,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        record: RecordedRequest | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if record is not None:
            record.status = status
            record.headers_sent_at = time.time()
        self.wfile.write(data)
        self.wfile.flush()
        if record is not None:
            record.finished_at = time.time()

    def _send_error(
        self,
        status: int,
        error_type: str | None = None,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        record: RecordedRequest | None = None,
    ) -> None:
        error_type = error_type or ERROR_TYPES.get(status, "api_error")
        request_id = _new_id("req_")
        body = {
            "type": "error",
            "error": {
                "type": error_type,
                "message": message or _ERROR_MESSAGES.get(error_type, "Error"),
            },
            "request_id": request_id,
        }
        all_headers = {"request-id": request_id, **(headers or {})}
        self._send_json(status, body, headers=all_headers, record=record)

    # -- routes -----------------------------------------------------------------

    def do_GET(self) -> None:
        self._read_body()
        path = self.path.split("?", 1)[0]
        if path == "/_fake/requests":
            records = [r.to_dict() for r in self.server.fake.requests]
            self._send_json(200, records)
        elif path in ("/", "/_fake/health"):
            self._send_json(200, {"ok": True})
        else:
            self._send_error(404, message=f"Not found: {path}")

    def do_POST(self) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0]
        fake = self.server.fake
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None

        if path.startswith("/_fake/"):
            self._control(path, body)
            return

        record = RecordedRequest(
            method="POST",
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            received_at=time.time(),
            stream=isinstance(body, dict) and body.get("stream") is True,
        )
        fake._record(record)

        if path != MESSAGES_PATH:
            self._send_error(404, message=f"Not found: {path}", record=record)
            return
        if record.api_key is None:
            self._send_error(401, message="x-api-key header is required", record=record)
            return
        problem = _validate(raw, body)
        if problem is not None:
            self._send_error(400, message=problem, record=record)
            return

        reply = fake._next_reply()
        record.reply = reply
        self._sleep(reply.delay)

        if reply.status != 200:
            headers = dict(reply.headers)
            retry_after = reply.retry_after
            if retry_after is None and reply.status == 429:
                retry_after = DEFAULT_429_RETRY_AFTER
            if retry_after is not None:
                headers.setdefault("retry-after", f"{retry_after:g}")
            self._send_error(
                reply.status,
                reply.error_type,
                reply.error_message,
                headers=headers,
                record=record,
            )
        elif record.stream:
            self._stream(reply, body, record)
        else:
            message = _message(reply, body["model"], body)
            headers = {"request-id": _new_id("req_"), **reply.headers}
            self._send_json(200, message, headers=headers, record=record)

    def _control(self, path: str, body: Any) -> None:
        fake = self.server.fake
        if path == "/_fake/replies":
            try:
                items = body if isinstance(body, list) else [body]
                replies = [Reply.from_dict(item) for item in items]
            except (TypeError, ValueError) as exc:
                self._send_error(400, message=str(exc))
                return
            fake.enqueue(*replies)
            self._send_json(200, {"queued": len(replies)})
        elif path == "/_fake/reset":
            fake.reset()
            self._send_json(200, {"ok": True})
        else:
            self._send_error(404, message=f"Not found: {path}")

    # -- streaming --------------------------------------------------------------

    def _chunk(self, data: bytes) -> None:
        if self.server.fake._stopping.is_set():
            raise _Aborted
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, payload: dict[str, Any]) -> None:
        name = payload["type"]
        data = json.dumps(payload, separators=(",", ":"))
        self._chunk(f"event: {name}\ndata: {data}\n\n".encode())

    def _stream(self, reply: Reply, body: dict[str, Any], record: RecordedRequest) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.send_header("request-id", _new_id("req_"))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        record.status = 200
        record.headers_sent_at = time.time()

        start = _message(reply, body["model"], body)
        start.update(content=[], stop_reason=None, stop_sequence=None)
        start["usage"]["output_tokens"] = 1
        self._event({"type": "message_start", "message": start})

        deltas_sent = 0
        pinged = not reply.send_ping
        for index, (block, deltas) in enumerate(_stream_blocks(reply, body)):
            citations = block.pop("_citations", [])
            self._event({"type": "content_block_start", "index": index, "content_block": block})
            if not pinged:
                self._event({"type": "ping"})
                pinged = True
            for citation in citations:
                # Citation deltas are not counted by the scripted faults (they count text and tool deltas).
                self._event({"type": "content_block_delta", "index": index, "delta": citation})
            for delta in deltas:
                if deltas_sent and reply.chunk_delay:
                    self._sleep(reply.chunk_delay)
                if self._fault(reply, deltas_sent, record):
                    return
                sent_at = time.time()
                self._event({"type": "content_block_delta", "index": index, "delta": delta})
                deltas_sent += 1
                record.delta_sent_at.append(sent_at)
            self._event({"type": "content_block_stop", "index": index})

        if self._fault(reply, deltas_sent, record, final=True):
            return
        self._event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": {
                    "input_tokens": reply.input_tokens,
                    "cache_creation_input_tokens": reply.cache_creation_input_tokens,
                    "cache_read_input_tokens": reply.cache_read_input_tokens,
                    "output_tokens": reply.output_tokens,
                },
            }
        )
        self._event({"type": "message_stop"})
        self._chunk(b"")  # the terminating zero-length chunk
        record.finished_at = time.time()

    def _fault(
        self,
        reply: Reply,
        deltas_sent: int,
        record: RecordedRequest,
        *,
        final: bool = False,
    ) -> bool:
        """Inject a scripted fault once ``deltas_sent`` reaches its threshold."""

        def due(after: int | None) -> bool:
            return after is not None and (deltas_sent == after or (final and deltas_sent < after))

        if due(reply.drop_after):
            # Close without the terminating chunk: the client sees a truncated body.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            record.finished_at = time.time()
            return True
        if due(reply.stream_error_after):
            error_type = reply.error_type or "overloaded_error"
            message = reply.error_message or _ERROR_MESSAGES.get(error_type, "Error")
            self._event({"type": "error", "error": {"type": error_type, "message": message}})
            self._chunk(b"")
            record.finished_at = time.time()
            return True
        return False


class FakeClaude:
    """A fake Anthropic Messages API on ``127.0.0.1``, served from a background thread.

    The server starts on construction; ``close()`` (or leaving the ``with`` block)
    stops it, waking any reply that is still sleeping.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        default: Reply | None = None,
        verbose: bool = False,
    ) -> None:
        #: Used when the queue is empty.
        self.default: Reply = default if default is not None else Reply()
        self.verbose = verbose
        self._lock = threading.Lock()
        self._queue: collections.deque[Reply] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._closed = False
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        bound_host, self.port = self._server.server_address[:2]
        self.host = bound_host if isinstance(bound_host, str) else bytes(bound_host).decode()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeClaude:{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies; each ``POST /v1/messages`` takes the next one."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("FakeClaude has not received any request")
            return self._requests[-1]

    @property
    def sent_at(self) -> list[float]:
        """``time.time()`` of each delta frame written for the latest request."""
        with self._lock:
            return list(self._requests[-1].delta_sent_at) if self._requests else []

    def reset(self) -> None:
        """Forget recorded requests and queued replies (``default`` is kept)."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FakeClaude({self.base_url!r})"

    # -- used by the handler ------------------------------------------------------

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(record)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _validate(raw: bytes, body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Request body is not valid JSON." if raw else "Request body is required."
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["model"], str) or not body["model"]:
        return "model: Input should be a valid string"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    if not isinstance(body["messages"], list):
        return "messages: Input should be a valid list"
    return None


def _stop_reason(reply: Reply) -> str:
    if reply.stop_reason is not None:
        return reply.stop_reason
    return "tool_use" if reply.tool_use is not None else "end_turn"


def _tool_block(reply: Reply) -> dict[str, Any] | None:
    if reply.tool_use is None:
        return None
    return {
        "type": "tool_use",
        "id": reply.tool_use.get("id") or _new_id("toolu_"),
        "name": reply.tool_use["name"],
        "input": dict(reply.tool_use.get("input") or {}),
    }


def _search_results(body: Any) -> list[dict[str, Any]]:
    """The request's ``search_result`` blocks in the order the API numbers them (messages, then tool results)."""
    found: list[dict[str, Any]] = []
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "search_result":
                found.append(block)
            elif block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                found.extend(b for b in block["content"] if isinstance(b, dict) and b.get("type") == "search_result")
    return found


def _citations(reply: Reply, body: Any) -> list[dict[str, Any]]:
    """``reply.citations`` as the API's ``search_result_location`` citations of this request's results."""
    results = _search_results(body)
    cited: list[dict[str, Any]] = []
    for spec in reply.citations or []:
        index = spec.get("search_result_index")
        if index is None:
            index = next((i for i, r in enumerate(results) if r.get("source") == spec.get("source")), None)
        if index is None or not 0 <= index < len(results) or not (results[index].get("citations") or {}).get("enabled"):
            continue
        result = results[index]
        texts = [b.get("text", "") for b in result.get("content") or [] if isinstance(b, dict)]
        cited.append(
            {
                "type": "search_result_location",
                "cited_text": texts[0] if texts else "",
                "search_result_index": index,
                "source": result.get("source", ""),
                "title": result.get("title"),
                "start_block_index": 0,
                "end_block_index": 1,
            }
        )
    return cited


def _message(reply: Reply, request_model: str, body: Any = None) -> dict[str, Any]:
    """The complete (non-streaming) Message for ``reply``."""
    content: list[dict[str, Any]] = []
    if reply.full_text or reply.tool_use is None:
        text_block: dict[str, Any] = {"type": "text", "text": reply.full_text}
        citations = _citations(reply, body)
        if citations:
            text_block["citations"] = citations
        content.append(text_block)
    tool = _tool_block(reply)
    if tool is not None:
        content.append(tool)
    return {
        "id": _new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": reply.model or request_model,
        "content": content,
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "cache_creation_input_tokens": reply.cache_creation_input_tokens,
            "cache_read_input_tokens": reply.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": reply.cache_creation_input_tokens,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": reply.output_tokens,
            "service_tier": "standard",
        },
    }


def _stream_blocks(
    reply: Reply,
    body: Any = None,
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(content_block_start block, its deltas) for each block of a streamed reply. A text block's
    ``_citations`` (popped before it is sent) are its ``citations_delta`` deltas."""
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if reply.full_text or reply.tool_use is None:
        deltas = [{"type": "text_delta", "text": c} for c in reply.text_chunks() if c]
        citations = [{"type": "citations_delta", "citation": c} for c in _citations(reply, body)]
        start: dict[str, Any] = {"type": "text", "text": ""}
        if citations:
            start["citations"] = []
            start["_citations"] = citations
        blocks.append((start, deltas))
    tool = _tool_block(reply)
    if tool is not None:
        encoded = json.dumps(tool.pop("input"))
        step = max(1, -(-len(encoded) // 3))
        pieces = [""] + [encoded[i : i + step] for i in range(0, len(encoded), step)]
        tool["input"] = {}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        blocks.append((tool, deltas))
    return blocks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake Anthropic Messages API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before replying")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between text deltas")
    parser.add_argument("--text", default=Reply.text)
    parser.add_argument("--input-tokens", type=int, default=Reply.input_tokens)
    parser.add_argument("--output-tokens", type=int, default=Reply.output_tokens)
    parser.add_argument("--cache-creation-input-tokens", type=int, default=0)
    parser.add_argument("--cache-read-input-tokens", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    default = Reply(
        text=args.text,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        cache_creation_input_tokens=args.cache_creation_input_tokens,
        cache_read_input_tokens=args.cache_read_input_tokens,
        delay=args.delay,
        chunk_delay=args.chunk_delay,
    )
    fake = FakeClaude(args.host, args.port, default=default, verbose=args.verbose)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sys.stdout.write(f"FakeClaude listening on {fake.base_url}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        fake.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
