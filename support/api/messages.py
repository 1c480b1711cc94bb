"""POST conversations/{id}/messages: log a turn (or a user/assistant pair) with its token usage.

Staff back-fill real usage; the widget may log its own turns only with SUPPORT_CLIENT_LOGGING=seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from support import pricing, services
from support.api.access import acting_as, is_staff
from support.api.base import max_turns_refusal
from support.api.idempotency import idempotency_key, in_progress_response, replay_refusal
from support.api.serializers import (
    ConversationOutputSerializer,
    MessageOutputSerializer,
    WidgetConversationOutputSerializer,
    WidgetMessageOutputSerializer,
    represent,
    validated,
)
from support.models import Conversation, EscalationReason, MessageOrigin, Role

MAX_TOKENS_PER_TURN = 10_000_000
_PAIR = ("user_message", "assistant_message")


class MessageCreateInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    content = serializers.CharField(max_length=settings.SUPPORT_MAX_MESSAGE_CHARS, required=False)
    user_message = serializers.CharField(max_length=settings.SUPPORT_MAX_MESSAGE_CHARS, required=False)
    assistant_message = serializers.CharField(max_length=settings.SUPPORT_MAX_MESSAGE_CHARS, required=False)
    input_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS_PER_TURN, default=0)
    output_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS_PER_TURN, default=0)
    cache_read_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS_PER_TURN, default=0)
    cache_write_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS_PER_TURN, default=0)
    is_escalation = serializers.BooleanField(default=False)
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if any(field in attrs for field in _PAIR):
            missing = [f for f in _PAIR if f not in attrs]
            if missing:
                raise serializers.ValidationError({f: ["This field is required with the pair form."] for f in missing})
            return self._within_model_limits(attrs)
        missing = [f for f in ("role", "content") if f not in attrs]
        if missing:
            raise serializers.ValidationError(
                {f: ["Send role and content, or user_message and assistant_message."] for f in missing}
            )
        return self._within_model_limits(attrs)

    def _within_model_limits(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The widget's own figures (SUPPORT_CLIENT_LOGGING=seed) are held to what one call of the model
        # could use. Staff are trusted to back-fill real usage, also of models newer than the table.
        if not self.context.get("client"):
            return attrs
        problem = pricing.usage_beyond_limits(
            model=attrs["model"] or settings.SUPPORT_DEFAULT_MODEL,
            input_tokens=attrs["input_tokens"],
            output_tokens=attrs["output_tokens"],
            cache_read_tokens=attrs["cache_read_tokens"],
            cache_write_tokens=attrs["cache_write_tokens"],
        )
        if problem:
            raise serializers.ValidationError({problem[0]: [problem[1]]})
        return attrs


class MessageCreateOutputSerializer(serializers.Serializer):
    conversation = ConversationOutputSerializer()
    messages = MessageOutputSerializer(many=True)


class MessageCreateWidgetOutputSerializer(serializers.Serializer):
    conversation = WidgetConversationOutputSerializer()
    messages = WidgetMessageOutputSerializer(many=True)


def _turns(values: dict[str, Any], *, origin: str) -> list[services.Turn]:
    model = values["model"]
    if "user_message" in values:
        return [
            services.Turn(
                role=Role.USER,
                content=values["user_message"],
                model=model,
                input_tokens=values["input_tokens"],
                cache_read_tokens=values["cache_read_tokens"],
                cache_write_tokens=values["cache_write_tokens"],
                origin=origin,
            ),
            services.Turn(
                role=Role.ASSISTANT,
                content=values["assistant_message"],
                model=model,
                output_tokens=values["output_tokens"],
                origin=origin,
            ),
        ]
    return [
        services.Turn(
            role=values["role"],
            content=values["content"],
            model=model,
            input_tokens=values["input_tokens"],
            output_tokens=values["output_tokens"],
            cache_read_tokens=values["cache_read_tokens"],
            cache_write_tokens=values["cache_write_tokens"],
            origin=origin,
        )
    ]


def _validated(request: Request, *, staff: bool) -> dict[str, Any]:
    if not staff and settings.SUPPORT_CLIENT_LOGGING != "seed":
        raise exceptions.PermissionDenied(
            "The widget may not log turns here (SUPPORT_CLIENT_LOGGING=off): send the customer's message "
            "to POST conversations/{id}/chat, which stores both turns itself."
        )
    values: dict[str, Any] = validated(MessageCreateInputSerializer, request.data, client=not staff)
    return values


def message_create(request: Request, conversation: Conversation) -> Response:
    """Log the request's turns on `conversation` (already checked against the caller), at most once per
    Idempotency-Key."""
    staff = is_staff(request)
    values = _validated(request, staff=staff)
    origin = MessageOrigin.STAFF if staff else MessageOrigin.CLIENT
    options: dict[str, Any] = {
        "turns": _turns(values, origin=origin),
        "is_escalation": values["is_escalation"],
        "escalation_reason": EscalationReason.STAFF if staff else EscalationReason.WIDGET_FLAG,
        # The answer is rendered from the conversation in memory, which the counters' update keeps current.
        "refresh": False,
        **acting_as(request),
    }
    serializer = MessageCreateOutputSerializer if staff else MessageCreateWidgetOutputSerializer

    def render(messages: list[Any]) -> Any:
        return represent(serializer, {"conversation": conversation, "messages": messages})

    key = idempotency_key(request)
    # The caller's kind is part of the request: a key staff used is not replayed to the widget.
    fingerprint = services.request_fingerprint({**values, "origin": origin}) if key else ""
    # The widget's turns count against SUPPORT_CHAT_MAX_TURNS, claimed in the transaction that stores them.
    options["turn_limit"] = None if staff else settings.SUPPORT_CHAT_MAX_TURNS
    try:
        body, existing = _log(conversation, key, fingerprint, render, options)
    except services.TurnLimitReached:
        raise max_turns_refusal() from None
    if body is None:  # nothing stored by this request
        return _replay(existing, fingerprint) if existing is not None else in_progress_response()
    return Response(body, status=status.HTTP_201_CREATED)


def _log(
    conversation: Conversation, key: str, fingerprint: str, render: Callable[[list[Any]], Any], options: dict[str, Any]
) -> tuple[Any, Any]:
    """(response body, None) when this request stored the turns; (None, record or None) when it did not."""
    if not key:
        return render(services.message_log(conversation=conversation, **options)), None
    try:
        with services.message_log_once(
            conversation=conversation, key=key, fingerprint=fingerprint, **options
        ) as logged:
            if logged.messages is None:
                return None, logged.record
            body = render(logged.messages)
            logged.complete(response=body)  # in the transaction that stored the turns
        return body, None
    except services.IdempotencyLeaseLost:
        # A retry took the key over while this request was stalled; that one stores the turn.
        return None, None


def _replay(record: Any, fingerprint: str) -> Response:
    refusal = replay_refusal(record, fingerprint)
    if refusal is not None:
        return refusal
    response = Response(record.response, status=status.HTTP_201_CREATED)
    response["Idempotent-Replayed"] = "true"
    return response
