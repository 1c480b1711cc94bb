"""GET widget/config: the embeddable widget's public settings."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from support import selectors
from support.api.base import ApiViewSet
from support.api.openapi import errors, extend_schema
from support.api.serializers import represent, validated


@extend_schema_serializer(many=False)  # one object, though served by the ViewSet's `list`
class WidgetConfigOutputSerializer(serializers.Serializer):
    title = serializers.CharField()
    greeting = serializers.CharField()
    quick_questions = serializers.ListField(child=serializers.CharField())
    primary_colour = serializers.CharField(help_text="CSS hex colour.")
    position = serializers.ChoiceField(choices=["right", "left"])
    support_email = serializers.CharField()
    max_message_chars = serializers.IntegerField()


class WidgetConfigQuerySerializer(serializers.Serializer):
    business_id = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        help_text="The business the widget is embedded for: its profile's title, greeting and support email.",
    )


class WidgetConfigViewSet(ApiViewSet):
    policy_name = "widget_config"
    # Public and identical for everyone: no session lookup, so browsers and proxies may cache it.
    authentication_classes: list[type[BaseAuthentication]] = []

    @extend_schema(
        parameters=[WidgetConfigQuerySerializer],
        responses={200: WidgetConfigOutputSerializer, **errors(400, 429)},
        operation_id="widget_config",
    )
    def list(self, request: Request) -> Response:
        query = validated(WidgetConfigQuerySerializer, request.query_params)
        config = selectors.widget_config(business_id=query["business_id"])
        response = Response(represent(WidgetConfigOutputSerializer, config))
        response["Cache-Control"] = f"public, max-age={settings.SUPPORT_WIDGET_CONFIG_MAX_AGE_S}"
        return response
