"""The Claude client: the official anthropic SDK, configured from settings, streaming one reply.

Retries are the SDK's own (429/529/5xx, connection errors). A client middleware (the SDK's public
extension point) puts one deadline over all of them: an attempt never waits past it, and a retry whose
back-off or `retry-after` would end past it is not made. So a reply either starts within
SUPPORT_CLAUDE_TIMEOUT_S or the caller gets ClaudeDeadlineExceeded and answers offline.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    import anthropic
    import httpx2
    from anthropic.types import MessageParam, TextBlockParam, ToolParam

    ClaudeDeadlineExceeded: type[anthropic.AnthropicError]

logger = logging.getLogger(__name__)

#: Seconds to open a connection (capped by the time left before the deadline).
CONNECT_TIMEOUT_S = 5.0

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("claude_deadline", default=None)


# The SDK (about 50 MB and 3,000 modules) is imported by the first Claude call, not with this module:
# every request path imports the chat code, and most requests never call Claude. So the two classes
# that subclass the SDK's are made on first use, once, and ClaudeDeadlineExceeded is served by
# the module's __getattr__. Made under a lock: two threads making their own would disagree on isinstance.
_sdk_lock = threading.Lock()
_sdk: tuple[type[anthropic.AnthropicError], Callable[..., anthropic.Middleware]] | None = None


def _sdk_classes() -> tuple[type[anthropic.AnthropicError], Callable[..., anthropic.Middleware]]:
    global _sdk
    with _sdk_lock:
        if _sdk is None:
            _sdk = _make_sdk_classes()
        return _sdk


def _make_sdk_classes() -> tuple[type[anthropic.AnthropicError], Callable[..., anthropic.Middleware]]:
    import anthropic

    class ClaudeDeadlineExceeded(anthropic.AnthropicError):
        """Claude did not start a reply within SUPPORT_CLAUDE_TIMEOUT_S, retries included."""

    class DeadlineMiddleware(anthropic.Middleware):
        """Bounds the SDK's retry loop by the deadline set in `reply_stream` (a context variable, so per call)."""

        def __init__(self, *, max_retries: int, stall_timeout: float) -> None:
            self.max_retries = max_retries
            self.stall_timeout = stall_timeout

        def handle(self, request: anthropic.APIRequest, call_next: Any) -> Any:
            return _deadline_handle(self.max_retries, self.stall_timeout, request, call_next)

    for made in (ClaudeDeadlineExceeded, DeadlineMiddleware):
        made.__module__, made.__qualname__ = __name__, made.__name__
    return ClaudeDeadlineExceeded, DeadlineMiddleware


def sdk_load() -> None:
    """Import the SDK and make its subclasses now. gunicorn's master calls this before forking when Claude
    is configured (gunicorn.conf.py), so every worker shares one copy instead of importing its own."""
    _sdk_classes()


def __getattr__(name: str) -> Any:
    if name == "ClaudeDeadlineExceeded":
        return _sdk_classes()[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _retry_wait_upper_bound(headers: Any, retries_taken: int) -> float:
    """The longest the SDK will sleep before its next attempt (its retry-after rules, else its back-off)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) * scale, 0.0)
        except ValueError:
            continue
    # The SDK's exponential back-off: 0.5 s doubling, capped at 8 s, minus up to 25 % jitter.
    return min(0.5 * 2.0**retries_taken, 8.0)


def _sdk_will_retry(response: httpx2.Response) -> bool:
    should_retry = response.headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return response.status_code in (408, 409, 429) or response.status_code >= 500


def _deadline_handle(max_retries: int, stall_timeout: float, request: anthropic.APIRequest, call_next: Any) -> Any:
    """DeadlineMiddleware.handle: one attempt of the SDK's, cut short or refused at the deadline."""
    import anthropic
    import httpx2

    deadline_exceeded = _sdk_classes()[0]
    deadline = _deadline.get()
    if deadline is None:
        return call_next(request)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise deadline_exceeded(f"no reply within the deadline after {request.retries_taken} retries")
    # The read timeout is also the stall limit once the reply streams: the smaller of the two.
    timeout = httpx2.Timeout(min(stall_timeout, remaining), connect=min(CONNECT_TIMEOUT_S, remaining))
    try:
        response = call_next(request.copy(timeout=timeout))
    except anthropic.APIConnectionError as exc:  # timeouts included; the SDK would back off and retry
        wait = _retry_wait_upper_bound({}, request.retries_taken)
        if request.retries_taken < max_retries and time.monotonic() + wait >= deadline:
            # `from None`: the SDK retries any error whose __cause__ chain holds a connection error.
            raise deadline_exceeded(f"{type(exc).__name__}; a retry would pass the deadline") from None
        raise
    http_response = response.http_response
    if http_response.is_success or request.retries_taken >= max_retries:
        return response
    if _sdk_will_retry(http_response):
        wait = _retry_wait_upper_bound(http_response.headers, request.retries_taken)
        if time.monotonic() + wait >= deadline:
            http_response.close()
            raise deadline_exceeded(
                f"Claude answered {http_response.status_code}; a retry in {wait:.1f}s would pass the deadline"
            )
    return response


@functools.lru_cache(maxsize=8)
def _client(api_key: str, base_url: str, max_retries: int, stall_timeout: float) -> anthropic.Anthropic:
    # One client (and connection pool) per process and configuration; it is thread-safe.
    import anthropic
    import httpx2

    deadline_middleware = _sdk_classes()[1]
    return anthropic.Anthropic(
        api_key=api_key,
        base_url=base_url or None,  # None: the SDK reads ANTHROPIC_BASE_URL, else its default endpoint
        max_retries=max_retries,
        timeout=httpx2.Timeout(stall_timeout, connect=CONNECT_TIMEOUT_S),
        middleware=[deadline_middleware(max_retries=max_retries, stall_timeout=stall_timeout)],
    )


def claude_configured() -> bool:
    return bool(settings.ANTHROPIC_API_KEY)


def claude_client() -> anthropic.Anthropic:
    return _client(
        settings.ANTHROPIC_API_KEY,
        settings.ANTHROPIC_BASE_URL,
        settings.SUPPORT_CLAUDE_MAX_RETRIES,
        settings.SUPPORT_CLAUDE_STALL_TIMEOUT_S,
    )


@dataclass
class ToolCall:
    name: str
    input: dict[str, Any]


@dataclass
class ClaudeReply:
    """One streamed reply: yields text deltas; usage, model and tool calls fill in as events arrive."""

    stream: Any
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    stop_reason: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: True once message_delta arrived: the usage figures are the API's final ones.
    usage_final: bool = False
    #: The `source` of every search result the reply cited (citations_delta events), in order, once each.
    cited_sources: list[str] = field(default_factory=list)
    _tool_json: dict[int, list[str]] = field(default_factory=dict)
    _tool_names: dict[int, str] = field(default_factory=dict)

    def text_deltas(self) -> Iterator[str]:
        """Text as it arrives. Raises what the SDK raises: APIStatusError (an SSE `error` event),
        httpx2.RemoteProtocolError (dropped connection), httpx2.ReadTimeout (stalled stream)..."""
        for event in self.stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                yield event.delta.text
            else:
                self._record(event)

    def _record(self, event: Any) -> None:
        """Everything but text: tool input as it streams, usage, model and stop reason."""
        kind = event.type
        if kind == "content_block_delta":
            self._delta(event)
        elif kind == "message_start":
            message = event.message
            self.model = message.model or ""
            self._usage(message.usage)
        elif kind == "content_block_start":
            self._block_start(event)
        elif kind == "content_block_stop":
            self._finish_tool(event.index)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or ""
            self._usage(event.usage)
            self.usage_final = True

    def _delta(self, event: Any) -> None:
        if event.delta.type == "input_json_delta":
            self._tool_json.setdefault(event.index, []).append(event.delta.partial_json)
        elif event.delta.type == "citations_delta":
            self._cite(event.delta.citation)

    def _block_start(self, event: Any) -> None:
        block = event.content_block
        if block.type == "tool_use":
            self._tool_names[event.index] = block.name
        elif block.type == "text":
            for citation in getattr(block, "citations", None) or ():
                self._cite(citation)

    def _cite(self, citation: Any) -> None:
        # Only search results carry our `source` (kb:<id>); other citation kinds name no article.
        source = getattr(citation, "source", None)
        if getattr(citation, "type", "") == "search_result_location" and source and source not in self.cited_sources:
            self.cited_sources.append(source)

    def _usage(self, usage: Any) -> None:
        # message_delta's figures are cumulative and final; message_start's are what is known up front.
        # A figure an event leaves out (None, or no such field) keeps the value already known.
        if usage is None:
            return
        self.input_tokens = _count(usage, "input_tokens", self.input_tokens)
        self.output_tokens = _count(usage, "output_tokens", self.output_tokens)
        self.cache_read_tokens = _count(usage, "cache_read_input_tokens", self.cache_read_tokens)
        self.cache_write_tokens = _count(usage, "cache_creation_input_tokens", self.cache_write_tokens)
        breakdown = getattr(usage, "cache_creation", None)
        if breakdown is not None:
            self.cache_write_1h_tokens = _count(breakdown, "ephemeral_1h_input_tokens", self.cache_write_1h_tokens)

    def _finish_tool(self, index: int) -> None:
        name = self._tool_names.pop(index, None)
        if name is None:
            return
        raw = "".join(self._tool_json.pop(index, []))
        try:
            arguments = json.loads(raw) if raw else {}
        except ValueError:
            arguments = {}
        self.tool_calls.append(ToolCall(name=name, input=arguments if isinstance(arguments, dict) else {}))

    def close(self) -> None:
        """Stop reading: closes the connection, so Claude stops generating (and billing) for it."""
        try:
            self.stream.close()
        except Exception:  # closing a broken connection may fail; nothing is left to do
            logger.debug("closing the Claude stream failed", exc_info=True)


def _count(source: Any, name: str, known: int) -> int:
    value = getattr(source, name, None)
    return known if value is None else int(value)


def reply_stream(
    *, system: Iterable[TextBlockParam], tools: Iterable[ToolParam], messages: Iterable[MessageParam]
) -> ClaudeReply:
    """Start one streamed reply to the prompt support.bot.prompt built (system blocks with their cache
    marker, tools, history). Returns once Claude's response has started (retries done).

    Raises anthropic.AnthropicError (ClaudeDeadlineExceeded, APIStatusError, APIConnectionError...)
    when no reply could be started.
    """
    token = _deadline.set(time.monotonic() + settings.SUPPORT_CLAUDE_TIMEOUT_S)
    try:
        stream = claude_client().messages.create(
            model=settings.SUPPORT_CLAUDE_MODEL,
            max_tokens=settings.SUPPORT_CLAUDE_MAX_TOKENS,
            system=system,
            tools=tools,
            messages=messages,
            stream=True,
        )
    finally:
        _deadline.reset(token)
    return ClaudeReply(stream=stream)
