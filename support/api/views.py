"""The support API: one view per operation; validate, call a service or selector, serialize."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from support import pricing, selectors, services
from support.api.access import TOKEN_HEADER, acting_as, conversation_for_request, is_staff
from support.api.idempotency import (
    idempotency_key,
    idempotency_parameter,
    in_progress_response,
    replay_refusal,
)
from support.api.serializers import (
    ConversationOutputSerializer,
    ConversationWithMessagesOutputSerializer,
    MessageOutputSerializer,
    WidgetConversationOutputSerializer,
    WidgetMessageOutputSerializer,
)
from support.api.throttles import ClientIPThrottle, ConversationCreateThrottle, PerConversationThrottle
from support.models import Conversation, EscalationReason, MessageOrigin, Rating, Role, Source, Status
from support.selectors import ConversationFilters
from support.validators import validate_end_date

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
MAX_TOKENS_PER_TURN = 10_000_000

TOKEN_PARAMETER = OpenApiParameter(
    TOKEN_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The conversation's secret from POST /conversations (staff may omit it).",
)


#: Retry-After for a conversation at its turn limit. The limit never lifts for that conversation
#: (start a new one); the header is there because every 429 of this API carries one.
MAX_TURNS_RETRY_AFTER_S = 24 * 60 * 60


def max_turns_refusal() -> exceptions.Throttled:
    exc = exceptions.Throttled(
        wait=MAX_TURNS_RETRY_AFTER_S,
        detail=f"This conversation has reached its limit of {settings.SUPPORT_CHAT_MAX_TURNS} "
        "turns; start a new conversation.",
    )
    exc.reason = "max_turns"
    return exc


def _single_line(value: str) -> str:
    """Header-like values (user agent) lose control characters so they cannot forge log or header lines."""
    return _CONTROL_CHARS.sub(" ", value).strip()


class Pagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


class WidgetApi(APIView):
    """Base for endpoints the public widget calls: throttled, reason named on 429.

    `throttle_classes` run before the view (per client IP); `conversation_throttle_classes` run in
    conversation_checked(), once the caller has shown the conversation's token: a request that fails the
    check counts against its own IP only, never against the conversation it named."""

    throttle_classes = [ClientIPThrottle]
    conversation_throttle_classes: list[type[PerConversationThrottle]] = []
    checked_conversation: Conversation | None = None

    def check_throttles(self, request: Request) -> None:
        for throttle in self.get_throttles():
            self._throttle(request, throttle)

    def _throttle(self, request: Request, throttle: Any) -> None:
        if not throttle.allow_request(request, self):
            exc = exceptions.Throttled(wait=throttle.wait())
            exc.reason = throttle.scope
            raise exc

    def conversation_checked(self, request: Request, conversation_id: str) -> Conversation:
        """conversation_for_request(), then the per-conversation limits."""
        self.checked_conversation = conversation_for_request(request, conversation_id)
        for throttle_class in self.conversation_throttle_classes:
            self._throttle(request, throttle_class())
        return self.checked_conversation


# --- 1. POST conversations -------------------------------------------------------------------
class ConversationCreateApi(WidgetApi):
    permission_classes = [AllowAny]
    throttle_classes = [ClientIPThrottle, ConversationCreateThrottle]

    class InputSerializer(serializers.Serializer):
        source = serializers.ChoiceField(choices=Source.choices, default=Source.WEB)
        page_url = serializers.URLField(max_length=2048, required=False, allow_blank=True, default="")
        user_agent = serializers.CharField(max_length=512, required=False, allow_blank=True)
        user_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
        business_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")

    class OutputSerializer(WidgetConversationOutputSerializer):
        token = serializers.CharField(help_text="The conversation's secret; shown only in this response.")

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, operation_id="conversation_create")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user_agent = values.get("user_agent") or request.headers.get("User-Agent", "")
        conversation, token = services.conversation_create(
            source=values["source"],
            page_url=values["page_url"],
            user_agent=_single_line(user_agent),
            user_id=values["user_id"],
            business_id=values["business_id"],
        )
        conversation.token = token
        return Response(self.OutputSerializer(conversation).data, status=status.HTTP_201_CREATED)


# --- 2. POST conversations/{id}/messages -----------------------------------------------------
class MessageCreateApi(WidgetApi):
    permission_classes = [AllowAny]  # staff or the conversation's token, checked per conversation
    conversation_throttle_classes = [PerConversationThrottle]

    class InputSerializer(serializers.Serializer):
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
            pair = "user_message" in attrs or "assistant_message" in attrs
            if pair:
                missing = [f for f in ("user_message", "assistant_message") if f not in attrs]
                if missing:
                    raise serializers.ValidationError(
                        {f: ["This field is required with the pair form."] for f in missing}
                    )
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

    class OutputSerializer(serializers.Serializer):
        conversation = ConversationOutputSerializer()
        messages = MessageOutputSerializer(many=True)

    class WidgetOutputSerializer(serializers.Serializer):
        conversation = WidgetConversationOutputSerializer()
        messages = WidgetMessageOutputSerializer(many=True)

    @staticmethod
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

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        parameters=[
            TOKEN_PARAMETER,
            idempotency_parameter(
                "Send the same key when retrying: the turn is logged once and the first answer replayed."
            ),
        ],
        operation_id="message_create",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.conversation_checked(request, conversation_id)
        staff = is_staff(request)
        if not staff and settings.SUPPORT_CLIENT_LOGGING != "seed":
            raise exceptions.PermissionDenied(
                "The widget may not log turns here (SUPPORT_CLIENT_LOGGING=off): send the customer's message "
                "to POST conversations/{id}/chat, which stores both turns itself."
            )
        data = self.InputSerializer(data=request.data, context={"client": not staff})
        data.is_valid(raise_exception=True)
        values = data.validated_data

        origin = MessageOrigin.STAFF if staff else MessageOrigin.CLIENT
        options: dict[str, Any] = {
            "turns": self._turns(values, origin=origin),
            "is_escalation": values["is_escalation"],
            "escalation_reason": EscalationReason.STAFF if staff else EscalationReason.WIDGET_FLAG,
            **acting_as(request),
        }
        serializer = self.OutputSerializer if staff else self.WidgetOutputSerializer

        def render(messages: list[Any]) -> Any:
            return serializer({"conversation": conversation, "messages": messages}).data

        key = idempotency_key(request)
        # The caller's kind is part of the request: a key staff used is not replayed to the widget.
        fingerprint = services.request_fingerprint({**values, "origin": origin}) if key else ""
        # The widget's turns count against SUPPORT_CHAT_MAX_TURNS, claimed in the transaction that stores them.
        options["turn_limit"] = None if staff else settings.SUPPORT_CHAT_MAX_TURNS
        try:
            body, existing = self._log(conversation, key, fingerprint, render, options)
        except services.TurnLimitReached:
            raise max_turns_refusal() from None
        if body is None:  # nothing stored by this request
            return self._replay(existing, fingerprint) if existing is not None else in_progress_response()
        return Response(body, status=status.HTTP_201_CREATED)

    @staticmethod
    def _log(
        conversation: Conversation, key: str, fingerprint: str, render: Any, options: dict[str, Any]
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

    @staticmethod
    def _replay(record: Any, fingerprint: str) -> Response:
        refusal = replay_refusal(record, fingerprint)
        if refusal is not None:
            return refusal
        response = Response(record.response, status=status.HTTP_201_CREATED)
        response["Idempotent-Replayed"] = "true"
        return response


# --- 3. PATCH conversations/{id} -------------------------------------------------------------
class ConversationUpdateApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Status.choices, required=False)
        escalated = serializers.BooleanField(required=False)
        escalation_reason = serializers.ChoiceField(choices=EscalationReason.choices, required=False, allow_blank=True)
        assigned_to = serializers.CharField(required=False, allow_null=True, help_text="A staff user's id, or null.")
        notes = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=20000,
            help_text="Adds one entry to the ticket's notes timeline (earlier notes stay); blank adds nothing.",
        )
        contact_email = serializers.EmailField(
            required=False, allow_blank=True, max_length=Conversation._meta.get_field("contact_email").max_length
        )

        def validate_assigned_to(self, value: str | None) -> Any:
            if value in (None, ""):
                return None
            user = selectors.staff_user_get(user_id=value)
            if user is None:
                raise serializers.ValidationError("No active staff user has this id.")
            return user

    @extend_schema(
        request=InputSerializer, responses={200: ConversationOutputSerializer}, operation_id="conversation_update"
    )
    def patch(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_request(request, conversation_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_update(
            conversation=conversation, actor=request.user, changes=data.validated_data
        )
        return Response(ConversationOutputSerializer(conversation).data)


# --- 4. GET conversations --------------------------------------------------------------------
class _CsvChoiceField(serializers.CharField):
    """`status=needs_review,open` or repeated `status=` parameters, each checked against the choices."""

    def __init__(self, *, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        self.allowed = [value for value, _ in choices]
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        values = [v.strip() for v in str(data).split(",") if v.strip()]
        bad = [v for v in values if v not in self.allowed]
        if bad:
            raise serializers.ValidationError(f"Unknown value {bad[0]!r}; choose from {', '.join(self.allowed)}.")
        return values


class FilterSerializer(serializers.Serializer):
    status = _CsvChoiceField(choices=Status.choices, required=False)
    source = _CsvChoiceField(choices=Source.choices, required=False)
    escalated = serializers.BooleanField(required=False, allow_null=True, default=None)
    escalation_reason = serializers.ChoiceField(choices=EscalationReason.choices, required=False)
    assigned_to = serializers.CharField(required=False)
    created_from = serializers.DateField(required=False)
    created_to = serializers.DateField(required=False, validators=[validate_end_date])
    q = serializers.CharField(required=False, max_length=200, allow_blank=True)
    model = serializers.CharField(required=False, max_length=100)
    rating = serializers.ChoiceField(
        choices=[*Rating.choices, ("rated", "Either")], required=False, help_text="The customer's thumbs (CSAT)."
    )
    page = serializers.IntegerField(required=False, min_value=1)
    origin = serializers.ChoiceField(
        choices=MessageOrigin.choices,
        required=False,
        help_text="Conversations with at least one turn of this origin; `client`: usage reported by the widget.",
    )
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=Pagination.max_page_size)

    def validate_assigned_to(self, value: str) -> Any:
        if value == "none":
            return value
        user = selectors.staff_user_get(user_id=value)
        if user is None:
            raise serializers.ValidationError("No active staff user has this id (or use 'none').")
        return user

    def to_filters(self) -> ConversationFilters:
        values = self.validated_data
        assigned = values.get("assigned_to")
        return ConversationFilters(
            status=values.get("status", []),
            source=values.get("source", []),
            escalated=values.get("escalated"),
            escalation_reason=values.get("escalation_reason", ""),
            assigned_to=None if assigned in (None, "none") else assigned,
            unassigned=assigned == "none",
            created_from=values.get("created_from"),
            created_to=values.get("created_to"),
            q=values.get("q", ""),
            model=values.get("model", ""),
            rating=values.get("rating", ""),
            origin=values.get("origin", ""),
        )


def _read_filters(request: Request) -> ConversationFilters:
    query = {key: ",".join(request.query_params.getlist(key)) for key in request.query_params}
    serializer = FilterSerializer(data=query)
    serializer.is_valid(raise_exception=True)
    if serializer.validated_data.get("created_from") and serializer.validated_data.get("created_to"):
        if serializer.validated_data["created_from"] > serializer.validated_data["created_to"]:
            raise exceptions.ValidationError({"created_from": ["Must not be after created_to."]})
    return serializer.to_filters()


class ConversationListApi(APIView):
    permission_classes = [IsAdminUser]
    pagination_class = Pagination  # also tells the schema the response is a page, not a bare list

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: ConversationOutputSerializer(many=True)},
        operation_id="conversation_list",
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.conversation_list(filters=_read_filters(request))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(ConversationOutputSerializer(page, many=True).data)


# --- 5. GET conversations/{id} ---------------------------------------------------------------
class ConversationDetailApi(WidgetApi):
    permission_classes = [AllowAny]  # staff or the conversation's token, checked per conversation
    throttle_classes = [ClientIPThrottle]

    class WidgetOutputSerializer(WidgetConversationOutputSerializer):
        messages = WidgetMessageOutputSerializer(many=True, source="messages_list")

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        responses={200: ConversationWithMessagesOutputSerializer},
        operation_id="conversation_detail",
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_request(request, conversation_id)
        conversation.messages_list = list(selectors.message_list(conversation=conversation))
        serializer = ConversationWithMessagesOutputSerializer if is_staff(request) else self.WidgetOutputSerializer
        data = serializer(conversation).data
        return Response(data)


# --- 6. GET tickets --------------------------------------------------------------------------
class TicketListApi(APIView):
    permission_classes = [IsAdminUser]
    pagination_class = Pagination

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: ConversationWithMessagesOutputSerializer(many=True)},
        operation_id="ticket_list",
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.ticket_list(filters=_read_filters(request))
        paginator = self.pagination_class()
        page = list(paginator.paginate_queryset(queryset, request, view=self) or [])
        grouped = selectors.messages_by_conversation(conversation_ids=[c.pk for c in page])
        for conversation in page:
            conversation.messages_list = grouped[conversation.pk]
        data = ConversationWithMessagesOutputSerializer(page, many=True).data
        return paginator.get_paginated_response(data)


# --- 7. GET analytics ------------------------------------------------------------------------
class AnalyticsApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=365, default=30)
        date_from = serializers.DateField(required=False, help_text="First day (UTC) of a range; overrides days.")
        date_to = serializers.DateField(required=False, help_text="Last day (UTC) of a range, included.")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            problem = selectors.window_error(date_from=attrs.get("date_from"), date_to=attrs.get("date_to"))
            if problem:
                raise serializers.ValidationError({problem[0]: [problem[1]]})
            return attrs

    @extend_schema(
        parameters=[InputSerializer],
        responses={
            200: inline_serializer(
                "Analytics",
                {
                    "total_conversations": serializers.IntegerField(),
                    "total_messages": serializers.IntegerField(),
                    "auto_resolved_pct": serializers.FloatField(),
                    "escalated_pct": serializers.FloatField(),
                    "avg_messages_per_conversation": serializers.FloatField(),
                    "total_cost_usd": serializers.FloatField(),
                    "total_cost_micros": serializers.IntegerField(),
                    "cost_per_conversation_usd": serializers.FloatField(allow_null=True),
                    "cost_per_auto_resolved_usd": serializers.FloatField(allow_null=True),
                    "auto_resolved": serializers.IntegerField(),
                    "escalated": serializers.IntegerField(),
                    "top_questions": serializers.ListField(child=serializers.DictField()),
                    "conversations_by_day": serializers.ListField(child=serializers.DictField()),
                    "cost_by_day": serializers.ListField(child=serializers.DictField()),
                    "escalation_rate_by_day": serializers.ListField(child=serializers.DictField()),
                    "by_status": serializers.ListField(child=serializers.DictField()),
                    "by_source": serializers.ListField(child=serializers.DictField()),
                    "by_model": serializers.ListField(child=serializers.DictField()),
                    "csat_pct": serializers.FloatField(
                        allow_null=True, help_text="Thumbs up / rated conversations * 100; null when none rated."
                    ),
                    "rated_count": serializers.IntegerField(),
                    "rated_up_count": serializers.IntegerField(),
                    "rated_down_count": serializers.IntegerField(),
                    "escalations_by_reason": serializers.ListField(child=serializers.DictField()),
                    "closed_after_escalation": serializers.IntegerField(),
                    "median_escalation_to_close_seconds": serializers.IntegerField(allow_null=True),
                    **{
                        f"client_reported_{name}": serializers.IntegerField(
                            help_text="Of the totals, what the widget reported itself (unverified); "
                            "drill down with GET conversations?origin=client."
                        )
                        for name in ("conversations", "messages", "input_tokens", "output_tokens", "cost_micros")
                    },
                    "client_reported_cost_usd": serializers.FloatField(),
                },
            )
        },
        operation_id="analytics",
    )
    def get(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        return Response(
            selectors.analytics_summary(
                days=values["days"], date_from=values.get("date_from"), date_to=values.get("date_to")
            )
        )


# --- The embeddable widget: rating, contact address, public config ---------------------------
class ConversationRateApi(WidgetApi):
    permission_classes = [AllowAny]  # staff or the conversation's token, checked per conversation

    class InputSerializer(serializers.Serializer):
        rating = serializers.ChoiceField(choices=Rating.choices)
        message_id = serializers.CharField(
            required=False, max_length=64, help_text="The assistant reply being rated (optional)."
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField(source="pk")
        rating = serializers.CharField()
        rated_at = serializers.DateTimeField()
        rated_message_id = serializers.CharField(allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        parameters=[TOKEN_PARAMETER],
        operation_id="conversation_rate",
        description="The customer's thumbs up/down on the conversation; rating again overwrites.",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_request(request, conversation_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        message = None
        if "message_id" in values:
            message = selectors.assistant_message_get(conversation=conversation, message_id=values["message_id"])
            if message is None:
                error = "No assistant reply in this conversation has this id."
                raise exceptions.ValidationError({"message_id": [error]})
        conversation = services.conversation_rate(
            conversation=conversation, rating=values["rating"], message=message, **acting_as(request)
        )
        return Response(self.OutputSerializer(conversation).data)


class ConversationContactApi(WidgetApi):
    permission_classes = [AllowAny]  # staff or the conversation's token, checked per conversation

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(
        request=InputSerializer,
        responses={200: WidgetConversationOutputSerializer},
        parameters=[TOKEN_PARAMETER],
        operation_id="conversation_contact",
        description="Where the customer wants a human to reply (the widget asks after an escalation).",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_request(request, conversation_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_contact_set(
            conversation=conversation, email=data.validated_data["email"], **acting_as(request)
        )
        return Response(WidgetConversationOutputSerializer(conversation).data)


class WidgetConfigApi(WidgetApi):
    # Public and identical for everyone: no session lookup, so browsers and proxies may cache it.
    authentication_classes = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        title = serializers.CharField()
        greeting = serializers.CharField()
        quick_questions = serializers.ListField(child=serializers.CharField())
        primary_colour = serializers.CharField(help_text="CSS hex colour.")
        position = serializers.ChoiceField(choices=["right", "left"])
        support_email = serializers.CharField()
        max_message_chars = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer}, operation_id="widget_config")
    def get(self, request: Request) -> Response:
        response = Response(self.OutputSerializer(selectors.widget_config()).data)
        response["Cache-Control"] = f"public, max-age={settings.SUPPORT_WIDGET_CONFIG_MAX_AGE_S}"
        return response
