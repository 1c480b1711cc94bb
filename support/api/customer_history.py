"""POST widget/history: a verified customer's own earlier conversations, for the widget to list.

Authorised by the user_hash only (the embedding site's server signs the user id), never by a conversation
id or token a page could guess or keep: without the right hash for that user_id the answer is 400."""

from __future__ import annotations

from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from support import selectors
from support.api.base import ApiViewSet
from support.api.openapi import BODY, errors, extend_schema
from support.api.serializers import represent, validated
from support.identity import hash_valid


class CustomerHistoryInputSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=128)
    user_hash = serializers.CharField(
        max_length=128, help_text="HMAC-SHA256(SUPPORT_IDENTITY_SECRET, user_id) in hex, from the site's server."
    )

    def validate(self, attrs: dict[str, str]) -> dict[str, str]:
        if not hash_valid(user_id=attrs["user_id"], given=attrs["user_hash"]):
            raise exceptions.ValidationError({"user_hash": ["user_hash does not match user_id."]})
        return attrs


class CustomerConversationOutputSerializer(serializers.Serializer):
    """What the customer may see of an earlier conversation: their own first message and its state."""

    id = serializers.CharField(source="pk")
    summary = serializers.CharField()
    status = serializers.CharField()
    business_id = serializers.CharField()
    message_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class CustomerHistoryOutputSerializer(serializers.Serializer):
    results = CustomerConversationOutputSerializer(many=True)


class CustomerHistoryViewSet(ApiViewSet):
    policy_name = "customer_history"
    # The hash is the credential: no session, so a staff cookie does not change the answer.
    authentication_classes: list[type[BaseAuthentication]] = []

    @extend_schema(
        request=CustomerHistoryInputSerializer,
        responses={200: CustomerHistoryOutputSerializer, **errors(*BODY, 429)},
        operation_id="customer_history",
        description="The verified customer's earlier verified conversations, newest first.",
    )
    def create(self, request: Request) -> Response:
        values = validated(CustomerHistoryInputSerializer, request.data)
        history = selectors.customer_history(user_id=values["user_id"])
        rows = list(history) if history is not None else []
        return Response(represent(CustomerHistoryOutputSerializer, {"results": rows}))
