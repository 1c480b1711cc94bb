"""conversations, conversations/{id} and the widget's actions on one conversation (messages, rating,
contact): validate, call one service or selector, serialize. Who may call what: support/api/policies.py."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from support import selectors, services
from support.api import messages as message_api
from support.api import replies as reply_api
from support.api.access import acting_as, conversation_for_request, conversation_or_404, is_staff
from support.api.base import ApiViewSet, Pagination, single_line
from support.api.filters import FilterSerializer, read_filters
from support.api.idempotency import idempotency_parameter
from support.api.openapi import BODY, TOKEN_PARAMETER, StaffOrWidget, errors, extend_schema
from support.api.serializers import (
    ConversationOutputSerializer,
    ConversationWithMessagesOutputSerializer,
    LoadedMessages,
    WidgetConversationOutputSerializer,
    WidgetMessageOutputSerializer,
    represent,
    validated,
)
from support.identity import IdentityRefused, identity_resolve
from support.models import Audience, Conversation, EscalationReason, HandledBy, Rating, Source, Status


class ConversationCreateInputSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=Source.choices, default=Source.WEB)  # type: ignore[assignment]  # not Field.source
    page_url = serializers.URLField(max_length=2048, required=False, allow_blank=True, default="")
    user_agent = serializers.CharField(max_length=512, required=False, allow_blank=True)
    user_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    business_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    audience = serializers.ChoiceField(choices=Audience.choices, required=False, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    user_hash = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        help_text="HMAC-SHA256(SUPPORT_IDENTITY_SECRET, user_id) in hex, computed by the embedding site's server.",
    )


class ConversationCreateOutputSerializer(WidgetConversationOutputSerializer):
    """The response's shape (the schema's): the view adds `token`, which is never stored, to the conversation."""

    token = serializers.CharField(help_text="The conversation's secret; shown only in this response.")


class ConversationDetailWidgetOutputSerializer(WidgetConversationOutputSerializer):
    messages = LoadedMessages(child=WidgetMessageOutputSerializer())


class ConversationUpdateInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    escalated = serializers.BooleanField(required=False)
    escalation_reason = serializers.ChoiceField(choices=EscalationReason.choices, required=False, allow_blank=True)
    assigned_to = serializers.CharField(required=False, allow_null=True, help_text="A staff user's id, or null.")
    handled_by = serializers.ChoiceField(
        choices=HandledBy.choices,
        required=False,
        help_text="`human`: take over (the bot stays silent); `bot`: hand back to the bot.",
    )
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


class ConversationRateInputSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=Rating.choices)
    message_id = serializers.CharField(
        required=False, max_length=64, help_text="The assistant reply being rated (optional)."
    )


class ConversationRateOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    rating = serializers.CharField()
    rated_at = serializers.DateTimeField()
    rated_message_id = serializers.CharField(allow_null=True)


class ConversationContactInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    values: dict[str, Any] = validated(serializer_class, request.data)
    return values


class ConversationViewSet(ApiViewSet):
    policy_name = "conversations"
    pagination_class = Pagination  # list only; also tells the schema that response is a page

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: ConversationOutputSerializer(many=True), **errors(400, 404)},
        operation_id="conversation_list",
    )
    def list(self, request: Request) -> Response:
        queryset = selectors.conversation_list(filters=read_filters(request), user=request.user)
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self) or []
        return paginator.get_paginated_response([represent(ConversationOutputSerializer, c) for c in page])

    @extend_schema(
        request=ConversationCreateInputSerializer,
        responses={201: ConversationCreateOutputSerializer, **errors(*BODY, 429)},
        operation_id="conversation_create",
    )
    def create(self, request: Request) -> Response:
        values = _valid(ConversationCreateInputSerializer, request)
        user_agent = values.get("user_agent") or request.headers.get("User-Agent", "")
        try:
            identity = identity_resolve(
                user_id=values["user_id"],
                business_id=values["business_id"],
                audience=values["audience"],
                email=values["email"],
                name=single_line(values["name"]),
                given_hash=values["user_hash"],
            )
        except IdentityRefused as refused:
            raise exceptions.ValidationError({refused.field: [str(refused)]}) from None
        conversation, token = services.conversation_create(
            source=values["source"],
            page_url=values["page_url"],
            user_agent=single_line(user_agent),
            identity=identity,
        )
        data = {**represent(WidgetConversationOutputSerializer, conversation), "token": token}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        responses={
            200: StaffOrWidget(
                name="ConversationDetail",
                staff=ConversationWithMessagesOutputSerializer,
                widget=ConversationDetailWidgetOutputSerializer,
            ),
            **errors(404, 429),
        },
        operation_id="conversation_detail",
    )
    def retrieve(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_request(request, conversation_id)
        selectors.conversation_messages_attach([conversation])
        serializer = (
            ConversationWithMessagesOutputSerializer if is_staff(request) else ConversationDetailWidgetOutputSerializer
        )
        return Response(represent(serializer, conversation))

    @extend_schema(
        request=ConversationUpdateInputSerializer,
        responses={200: ConversationOutputSerializer, **errors(*BODY, 404)},
        operation_id="conversation_update",
    )
    def partial_update(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_or_404(conversation_id, user=request.user)
        changes = _valid(ConversationUpdateInputSerializer, request)
        conversation = services.conversation_update(conversation=conversation, actor=request.user, changes=changes)
        return Response(represent(ConversationOutputSerializer, conversation))

    @extend_schema(
        request=message_api.MessageCreateInputSerializer,
        responses={
            201: StaffOrWidget(
                name="MessageCreate",
                staff=message_api.MessageCreateOutputSerializer,
                widget=message_api.MessageCreateWidgetOutputSerializer,
            ),
            **errors(*BODY, 404, 409, 429),
        },
        parameters=[
            TOKEN_PARAMETER,
            idempotency_parameter(
                "Send the same key when retrying: the turn is logged once and the first answer replayed."
            ),
        ],
        operation_id="message_create",
    )
    @action(detail=True, methods=["post"])
    def messages(self, request: Request, conversation_id: str) -> Response:
        # No join of the assignee: a write the widget makes by _id (the staff answer loads it if assigned).
        conversation = self.conversation_checked(request, conversation_id, with_assignee=False)
        return message_api.message_create(request, conversation)

    @extend_schema(
        parameters=[TOKEN_PARAMETER, reply_api.PollQuerySerializer],
        responses={
            200: reply_api.PollOutputSerializer,
            304: OpenApiResponse(description="Nothing changed since the ETag sent in If-None-Match."),
            **errors(400, 404, 429),
        },
        operation_id="message_poll",
        description="The turns after `after` and who answers now (the widget's and the ticket page's poll). "
        "Send the ETag back in If-None-Match: an unchanged answer is a 304 with no body.",
    )
    @messages.mapping.get
    def messages_poll(self, request: Request, conversation_id: str) -> Response:
        # An unchanged poll is a 304 from the cache alone; the conversation is read (and its token checked)
        # only when it is not.
        return reply_api.messages_poll(request, conversation_id, read=getattr(self, "poll_state", None))

    @extend_schema(
        request=reply_api.ReplyInputSerializer,
        responses={201: reply_api.ReplyOutputSerializer, **errors(*BODY, 404)},
        operation_id="reply_create",
        description="A staff member's reply to the customer. A person then owns the conversation (unless "
        "`hand_back`), an unassigned ticket is assigned to the replier and a closed one reopens.",
    )
    @action(detail=True, methods=["post"])
    def replies(self, request: Request, conversation_id: str) -> Response:
        return reply_api.reply_create(request, conversation_or_404(conversation_id, user=request.user))

    @extend_schema(
        request=ConversationRateInputSerializer,
        responses={200: ConversationRateOutputSerializer, **errors(*BODY, 404, 429)},
        parameters=[TOKEN_PARAMETER],
        operation_id="conversation_rate",
        description="The customer's thumbs up/down on the conversation; rating again overwrites.",
    )
    @action(detail=True, methods=["post"])
    def rating(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_request(request, conversation_id)
        values = _valid(ConversationRateInputSerializer, request)
        message = None
        if "message_id" in values:
            message = selectors.assistant_message_get(conversation=conversation, message_id=values["message_id"])
            if message is None:
                error = "No assistant reply in this conversation has this id."
                raise exceptions.ValidationError({"message_id": [error]})
        conversation = services.conversation_rate(
            conversation=conversation, rating=values["rating"], message=message, **acting_as(request)
        )
        return Response(represent(ConversationRateOutputSerializer, conversation))

    @extend_schema(
        request=ConversationContactInputSerializer,
        responses={200: WidgetConversationOutputSerializer, **errors(*BODY, 404, 429)},
        parameters=[TOKEN_PARAMETER],
        operation_id="conversation_contact",
        description="Where the customer wants a human to reply (the widget asks after an escalation).",
    )
    @action(detail=True, methods=["post"])
    def contact(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_request(request, conversation_id)
        email = _valid(ConversationContactInputSerializer, request)["email"]
        conversation = services.conversation_contact_set(conversation=conversation, email=email, **acting_as(request))
        return Response(represent(WidgetConversationOutputSerializer, conversation))
