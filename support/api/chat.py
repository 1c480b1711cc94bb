"""POST conversations/{id}/chat: the Claude chat proxy (contract: CHAT_CONTRACT.md, issue 3).

Validate, check the limits, store the customer's turn, then stream the reply as Server-Sent Events
(or return it as JSON with `stream: false`). The streaming body is a generator handed to Django's
StreamingHttpResponse, so gunicorn's threaded workers write each event as it is produced.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Generator, Iterator
from typing import Any, overload

from django.conf import settings
from django.http import HttpResponseBase, StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema_field, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.mediatypes import media_type_matches

from support import bot, db, outcomes, selectors, services
from support.api.access import is_staff
from support.api.base import TOKEN_PARAMETER, WidgetApi, max_turns_refusal
from support.api.idempotency import idempotency_key, idempotency_parameter, replay_refusal
from support.api.openapi import BODY, StaffOrWidget, errors, extend_schema
from support.api.replies import AgentSerializer
from support.api.serializers import validated
from support.api.stream_slots import StreamSlot, client_ip, stream_slot_acquire
from support.api.throttles import PerConversationThrottle
from support.bot.citations import sources_payload
from support.models import IdempotencyRecord
from support.pricing import micros_to_usd

ASK_IF_ANSWERED_HELP = (
    "The reply is a substantive answer and nobody was called in (support/outcomes.py): the widget asks "
    "'Did that answer your question?' under it; Yes is a thumbs-up (confirmed), No a thumbs-down (negative)."
)


def ask_if_answered(result: bot.ChatResult) -> bool:
    return not result.conversation.escalated and outcomes.is_substantive(result.message.content)


logger = logging.getLogger(__name__)

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx and similar proxies buffer responses unless told not to; the reply must flow as it is written.
    "X-Accel-Buffering": "no",
}


#: The schema of one server-sent event (what clients and schemathesis check each event against):
#: `data` is a JSON document whose shape depends on `event`.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["start", "delta", "done", "error"]},
        "data": {
            "type": "string",
            "description": "JSON: {user_message_id} | {text} | the 201 body | {retry, message}. Every stream ends "
            "with `done` or `error`; `error` means the reply was not stored: with retry=true send the same "
            "message again with the same Idempotency-Key (the customer's turn is not stored twice).",
        },
    },
}


class ChatUsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()


class ChatSourceSerializer(serializers.Serializer):
    """One knowledge-base article the reply cited (issue 14)."""

    id = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField(help_text="The article's public page; empty when it has none.")


class ChatApi(WidgetApi):
    """Send the customer's message; the bot's reply streams back as Server-Sent Events (or JSON).

    The customer's turn is stored first. The reply comes from Claude, or from the knowledge base when no
    API key is set, the daily budget is spent or Claude fails; the `done` event carries the stored reply
    and whether the conversation is now escalated and why, and for staff also the model, usage and cost.
    """

    permission_classes = [AllowAny]  # staff or the conversation's token, checked per conversation
    conversation_throttle_classes = [PerConversationThrottle]

    @extend_schema_serializer(component_name="ChatInput")
    class InputSerializer(serializers.Serializer):
        message = serializers.CharField(help_text="The customer's message, 1 to SUPPORT_MAX_MESSAGE_CHARS characters.")
        stream = serializers.BooleanField(default=True, help_text="Server-Sent Events (default) or one JSON body.")

        def validate_message(self, value: str) -> str:
            # Read per request (not at import) so the limit follows the settings in force.
            limit = settings.SUPPORT_MAX_MESSAGE_CHARS
            if len(value) > limit:
                raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
            return value

    @extend_schema_serializer(component_name="ChatOutput")
    class OutputSerializer(serializers.Serializer):
        """The `done` event's data, and the JSON body with `stream: false`."""

        message_id = serializers.CharField(source="message.pk")
        user_message_id = serializers.CharField(source="user_message.pk")
        text = serializers.CharField(source="message.content")
        escalated = serializers.BooleanField(source="conversation.escalated")
        escalation_reason = serializers.CharField(source="conversation.escalation_reason")
        partial = serializers.BooleanField(source="message.is_partial")  # type: ignore[assignment]  # the seed's field name; DRF's Serializer.partial is unused here
        fallback = serializers.BooleanField(help_text="Answered by the offline knowledge-base responder.")
        ask_if_answered = serializers.SerializerMethodField(help_text=ASK_IF_ANSWERED_HELP)
        model = serializers.CharField(source="message.model")
        usage = ChatUsageSerializer(source="message")
        cost_micros = serializers.IntegerField(source="message.cost_micros")
        cost_usd = serializers.SerializerMethodField()
        latency_ms = serializers.IntegerField(source="message.latency_ms", allow_null=True)
        first_token_ms = serializers.IntegerField(source="message.first_token_ms", allow_null=True)
        sources = serializers.SerializerMethodField(help_text="The knowledge-base articles the reply cited.")

        def get_cost_usd(self, result: bot.ChatResult) -> float:
            return micros_to_usd(result.message.cost_micros)

        @extend_schema_field(ChatSourceSerializer(many=True))
        def get_sources(self, result: bot.ChatResult) -> list[dict[str, str]]:
            return sources_payload(result.sources)

        def get_ask_if_answered(self, result: bot.ChatResult) -> bool:
            return ask_if_answered(result)

    @extend_schema_serializer(component_name="ChatWidgetOutput")
    class WidgetOutputSerializer(serializers.Serializer):
        """What the widget gets in `done`: the reply, never its model, usage or cost."""

        message_id = serializers.CharField()
        user_message_id = serializers.CharField()
        text = serializers.CharField()
        escalated = serializers.BooleanField()
        escalation_reason = serializers.CharField()
        partial = serializers.BooleanField()  # type: ignore[assignment]  # as in OutputSerializer
        fallback = serializers.BooleanField()
        ask_if_answered = serializers.BooleanField(help_text=ASK_IF_ANSWERED_HELP)
        latency_ms = serializers.IntegerField(allow_null=True)
        first_token_ms = serializers.IntegerField(allow_null=True)
        sources = ChatSourceSerializer(many=True)

    @extend_schema_serializer(component_name="ChatHumanOutput")
    class HumanOutputSerializer(serializers.Serializer):
        """The answer while a person owns the conversation (handled_by=human): the turn is stored, the bot
        stays silent, and `agent` is who will reply (first name and initial) when known."""

        handled_by = serializers.ChoiceField(choices=["human"])
        user_message_id = serializers.CharField()
        agent = AgentSerializer(allow_null=True)
        text = serializers.CharField(allow_blank=True, help_text="Always empty: no bot text.")

    @extend_schema(
        request=InputSerializer,
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                SSE_EVENT_SCHEMA,
                description="stream=true: events `start` {user_message_id}, `delta` {text} (0..n), then "
                "`done` (the same object as the 201 body; the widget's has no model, usage or cost) or `error` "
                "{retry, message}. While a person owns the conversation (handled_by=human): `start`, then `done` "
                "with the ChatHumanOutput object, and no `delta`.",
            ),
            201: StaffOrWidget(
                name="Chat", staff=OutputSerializer, widget=WidgetOutputSerializer, others=(HumanOutputSerializer,)
            ),
            **errors(*BODY, 404, 409, 429),
        },
        parameters=[
            TOKEN_PARAMETER,
            idempotency_parameter(
                "The client's id for this turn: a retry replays the stored reply without calling "
                "Claude again; 409 while the first request is still running."
            ),
        ],
        operation_id="chat",
    )
    def post(self, request: Request, conversation_id: str) -> Any:
        conversation = self.conversation_checked(request, conversation_id)
        values = validated(self.InputSerializer, request.data)
        text, stream = values["message"], values["stream"]
        key = idempotency_key(request)
        staff = is_staff(request)
        if not staff:
            services.conversation_seen(conversation=conversation)
        if bot.bot_is_silent(conversation):
            return self._human(conversation, text, key=key, stream=stream, staff=staff)
        # A reply holds this thread while Claude writes: capped per worker and per client IP (429 beyond).
        slot = stream_slot_acquire(ip=None if staff else client_ip(request))
        try:
            begun = self._begin(conversation, text, key=key, stream=stream, staff=staff)
        except BaseException:
            slot.release()
            raise
        if not isinstance(begun, tuple):  # a replay
            slot.release()
            return begun
        turn, record = begun
        return self._answer(turn, record, stream=stream, slot=slot, staff=staff)

    def _begin(
        self, conversation: Any, text: str, *, key: str, stream: bool, staff: bool
    ) -> Any | tuple[bot.ChatTurn, IdempotencyRecord | None]:
        """Claim the key, the two turns under SUPPORT_CHAT_MAX_TURNS and store the customer's turn:
        (turn, record), or a replay response."""
        fingerprint = services.request_fingerprint({"message": text}) if key else ""
        record: IdempotencyRecord | None = None
        reserved = False
        # One commit for the key's claim and the customer's turn: the customer waits for this one.
        # The claim frees the key if this fails before the customer's turn is stored.
        try:
            with services.idempotency_chat_claim(conversation=conversation, key=key, fingerprint=fingerprint) as held:
                record = held.record
                if record is not None and not held.first:
                    return self._replay_or_resume(record, fingerprint, conversation, stream=stream, staff=staff)
                # The customer's turn and the reply, claimed in one conditional update (a parallel chat
                # cannot pass on the same count).
                reserved = services.conversation_turns_reserve(
                    conversation=conversation, turns=2, limit=settings.SUPPORT_CHAT_MAX_TURNS
                )
                if not reserved:
                    raise max_turns_refusal()
                turn = bot.chat_turn_begin(conversation=conversation, text=text)
                if record is not None:
                    services.idempotency_turn_attach(record=record, user_message=turn.user_message)
        except BaseException:
            stored_turn = record is not None and record.user_message_id is not None
            if reserved and db.atomic_is_noop() and not stored_turn:
                # SQLite rolled the claim back with the rest. On MongoDB the turns are given back unless the
                # customer's turn was stored: a same-key retry resumes it within the same claim.
                services.conversation_turns_release(conversation=conversation, turns=2)
            raise
        return turn, record

    def _human(self, conversation: Any, text: str, *, key: str, stream: bool, staff: bool) -> Any:
        """A person owns the conversation: store the customer's turn (one turn of the limit) and say who will
        reply; no Claude call, no budget, no bot text. The key's answer is stored in the same commit."""
        fingerprint = services.request_fingerprint({"message": text}) if key else ""
        reserved = False
        stored = None
        try:
            with services.idempotency_chat_claim(conversation=conversation, key=key, fingerprint=fingerprint) as held:
                record = held.record
                if record is not None and not held.first:
                    replayed = self._replay_or_resume(record, fingerprint, conversation, stream=stream, staff=staff)
                    if isinstance(replayed, tuple):  # pragma: no cover - _replay_or_resume never resumes then
                        raise RuntimeError("a silent bot resumed a turn")
                    return replayed
                limit = settings.SUPPORT_CHAT_MAX_TURNS
                reserved = services.conversation_turns_reserve(conversation=conversation, turns=1, limit=limit)
                if not reserved:
                    raise max_turns_refusal()
                stored = bot.human_turn_store(conversation=conversation, text=text)
                data = bot.human_done_data(conversation=conversation, user_message=stored)
                if record is not None:
                    services.idempotency_turn_attach(record=record, user_message=stored)
                    services.idempotency_complete(record=record, response=data)
        except BaseException:
            if reserved and db.atomic_is_noop() and stored is None:
                services.conversation_turns_release(conversation=conversation, turns=1)
            raise
        if stream:
            frames = (_sse(name, payload) for name, payload in bot.replay_events(data=data))
            return _sse_response(frames, status_code=status.HTTP_200_OK)
        return Response(data, status=status.HTTP_201_CREATED)

    def _answer(
        self, turn: bot.ChatTurn, record: IdempotencyRecord | None, *, stream: bool, slot: StreamSlot, staff: bool
    ) -> Any:
        outcome = _Outcome(record, staff=staff)
        events = bot.chat_turn_events(turn=turn, on_stored=outcome.stored)
        if stream:
            return _sse_response(outcome.encode(events), status_code=status.HTTP_200_OK, slot=slot)
        try:
            for _ in events:
                pass
        finally:
            outcome.remember()
            slot.release()
        if outcome.data is None:
            response = Response({"detail": bot.STORE_FAILED_TEXT, "retry": True}, status=503)
            response["Retry-After"] = "1"
            return response
        return Response(for_caller(outcome.data, staff=staff), status=status.HTTP_201_CREATED)

    def _replay_or_resume(
        self, record: IdempotencyRecord, fingerprint: str, conversation: Any, *, stream: bool, staff: bool
    ) -> Any | tuple[bot.ChatTurn, IdempotencyRecord]:
        """A key seen before: replay its stored reply, or resume a turn whose reply was never stored."""
        if not services.idempotency_resume(record=record, fingerprint=fingerprint):
            return self._replay(record, fingerprint, stream=stream, staff=staff)
        user_message = record.user_message
        assert user_message is not None  # idempotency_resume takes over only a claim whose turn is stored
        if bot.bot_is_silent(conversation) and selectors.message_reply_to(message=user_message) is None:
            # A person took over since: the turn waits for them, the bot does not answer it.
            record.response = bot.human_done_data(conversation=conversation, user_message=user_message)
            services.idempotency_complete(record=record, response=record.response)
            return self._replay(record, fingerprint, stream=stream, staff=staff)
        resumed = bot.chat_turn_resume(conversation=conversation, user_message=user_message)
        if isinstance(resumed, bot.ChatTurn):
            return resumed, record
        # The reply was stored but the key never completed: complete it now and replay.
        outcome = _Outcome(record, staff=staff)
        outcome.stored(resumed)
        outcome.remember()
        record.response = outcome.data
        return self._replay(record, fingerprint, stream=stream, staff=staff)

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        # The stream is written by hand (never by a renderer) and everything else, errors included, is
        # JSON; so an Accept that admits the stream but not JSON (`text/event-stream`) still gets the
        # answer the body's `stream` flag picks, with errors as JSON.
        try:
            return super().perform_content_negotiation(request, force)
        except exceptions.NotAcceptable:
            accept = request.META.get("HTTP_ACCEPT", "")
            if any(media_type_matches("text/event-stream", part.strip()) for part in accept.split(",")):
                return JSONRenderer(), JSONRenderer.media_type
            raise

    def _replay(self, record: IdempotencyRecord, fingerprint: str, *, stream: bool, staff: bool) -> Any:
        refusal = replay_refusal(record, fingerprint)
        if refusal is not None:
            return refusal
        data = for_caller(record.response or {}, staff=staff)  # replay_refusal answered for a missing reply
        response: HttpResponseBase
        if stream:
            frames = (_sse(name, payload) for name, payload in bot.replay_events(data=data))
            response = _sse_response(frames, status_code=status.HTTP_200_OK)
        else:
            response = Response(data, status=status.HTTP_201_CREATED)
        response["Idempotent-Replayed"] = "true"
        return response


class _Outcome:
    """Turns chat events into SSE frames and keeps the stored reply for the idempotency record."""

    def __init__(self, record: IdempotencyRecord | None, *, staff: bool) -> None:
        self.record = record
        self.staff = staff
        self.data: dict[str, Any] | None = None
        self.remembered = False

    def stored(self, result: bot.ChatResult) -> None:
        # Called once the reply is stored, also when the client has gone.
        self.data = done_data(result)

    def remember(self) -> None:
        """Complete the Idempotency-Key's record (a retry replays the reply). When no reply was stored, the
        customer's turn was: keep the key, and let a same-key retry resume the turn at once."""
        if self.record is None or self.remembered:
            return
        self.remembered = True
        services.idempotency_finish(
            record=self.record, response=self.data, deadline=time.monotonic() + settings.SUPPORT_CHAT_STORE_RETRY_S
        )

    def encode(self, events: Generator[bot.ChatEvent]) -> Iterator[bytes]:
        try:
            for event in events:
                if event.name == "delta":
                    yield _sse("delta", {"text": event.text})
                elif event.name == "start":
                    yield _sse("start", {"user_message_id": str(getattr(event.user_message, "pk", ""))})
                elif event.name == "done" and self.data is not None:
                    yield _sse("done", for_caller(self.data, staff=self.staff))
                elif event.name == "error":
                    yield _sse("error", {"retry": True, "message": event.text})
        except Exception:
            # Whatever went wrong, the stream ends with a terminal event the client can act on.
            logger.exception("the chat stream failed")
            yield _sse("error", {"retry": True, "message": bot.STORE_FAILED_TEXT})
        finally:
            # Also on a client disconnect (GeneratorExit): closing the chat events stores the partial turn.
            # The record is written after `done` has gone out, so the customer never waits for it.
            events.close()
            self.remember()


def done_data(result: bot.ChatResult) -> dict[str, Any]:
    """ChatApi.OutputSerializer's output, built directly: it goes out while the customer waits for `done`,
    and a serializer costs several times as much (tests check the two agree)."""
    message, conversation = result.message, result.conversation
    return {
        "message_id": str(message.pk),
        "user_message_id": str(result.user_message.pk),
        "text": message.content,
        "escalated": conversation.escalated,
        "escalation_reason": conversation.escalation_reason,
        "partial": message.is_partial,
        "fallback": result.fallback,
        "ask_if_answered": ask_if_answered(result),
        "model": message.model,
        "usage": {
            "input_tokens": message.input_tokens,
            "output_tokens": message.output_tokens,
            "cache_read_tokens": message.cache_read_tokens,
            "cache_write_tokens": message.cache_write_tokens,
        },
        "cost_micros": message.cost_micros,
        "cost_usd": micros_to_usd(message.cost_micros),
        "latency_ms": message.latency_ms,
        "first_token_ms": message.first_token_ms,
        "sources": sources_payload(result.sources),
    }


#: What only staff see of a turn: the widget is told nothing about usage or cost.
STAFF_ONLY_FIELDS = ("model", "usage", "cost_micros", "cost_usd")


@overload
def for_caller(data: dict[str, Any], *, staff: bool) -> dict[str, Any]: ...
@overload
def for_caller(data: None, *, staff: bool) -> None: ...
def for_caller(data: dict[str, Any] | None, *, staff: bool) -> dict[str, Any] | None:
    """done_data() as the caller may see it. The full data is what is stored for a replay, so a retry by
    staff still gets everything and one by the widget gets no more than the widget's shape."""
    if staff or data is None:
        return data
    return {name: value for name, value in data.items() if name not in STAFF_ONLY_FIELDS}


def _sse(name: str, payload: dict[str, Any]) -> bytes:
    # json.dumps escapes newlines, so each event's data is one line.
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


class _SlotBody:
    """The SSE frames; closing it (the WSGI server does, also when the client went away before the first
    frame) frees the stream slot."""

    def __init__(self, frames: Iterator[bytes], slot: StreamSlot) -> None:
        self.frames, self.slot = frames, slot

    def __iter__(self) -> Iterator[bytes]:
        return self.frames

    def close(self) -> None:
        try:
            close = getattr(self.frames, "close", None)
            if close is not None:
                close()
        finally:
            self.slot.release()


def _sse_response(
    frames: Iterator[bytes], *, status_code: int, slot: StreamSlot | None = None
) -> StreamingHttpResponse:
    body = frames if slot is None else _SlotBody(frames, slot)
    response = StreamingHttpResponse(body, status=status_code, content_type="text/event-stream")
    for name, value in SSE_HEADERS.items():
        response[name] = value
    return response
