"""GET analytics: the staff dashboard's figures over a window of days."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from support import selectors
from support.api.base import ApiViewSet
from support.api.openapi import errors, extend_schema
from support.api.serializers import validated
from support.models import Audience


class AnalyticsInputSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=365, default=30)
    date_from = serializers.DateField(required=False, help_text="First day (UTC) of a range; overrides days.")
    date_to = serializers.DateField(required=False, help_text="Last day (UTC) of a range, included.")
    business_id = serializers.CharField(
        required=False, max_length=128, help_text="Only this business (venue); every figure and chart."
    )
    audience = serializers.ChoiceField(choices=Audience.choices, required=False, help_text="Only diners or owners.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problem = selectors.window_error(date_from=attrs.get("date_from"), date_to=attrs.get("date_to"))
        if problem:
            raise serializers.ValidationError({problem[0]: [problem[1]]})
        return attrs


def _client_reported() -> serializers.IntegerField:
    return serializers.IntegerField(
        help_text="Of the totals, what the widget reported itself (unverified); "
        "drill down with GET conversations?origin=client."
    )


@extend_schema_serializer(many=False)  # one object, though served by the ViewSet's `list`
class AnalyticsSerializer(serializers.Serializer):
    # What selectors.analytics_summary() returns (schema only).

    total_conversations = serializers.IntegerField()
    total_messages = serializers.IntegerField()
    auto_resolved_pct = serializers.FloatField()
    escalated_pct = serializers.FloatField()
    avg_messages_per_conversation = serializers.FloatField()
    total_cost_usd = serializers.FloatField()
    total_cost_micros = serializers.IntegerField()
    cost_per_conversation_usd = serializers.FloatField(allow_null=True)
    cost_per_auto_resolved_usd = serializers.FloatField(allow_null=True)
    auto_resolved = serializers.IntegerField()
    escalated = serializers.IntegerField()
    top_questions = serializers.ListField(child=serializers.DictField())
    conversations_by_day = serializers.ListField(child=serializers.DictField())
    cost_by_day = serializers.ListField(child=serializers.DictField())
    escalation_rate_by_day = serializers.ListField(child=serializers.DictField())
    by_status = serializers.ListField(child=serializers.DictField())
    by_source = serializers.ListField(child=serializers.DictField())
    by_model = serializers.ListField(child=serializers.DictField())
    csat_pct = serializers.FloatField(
        allow_null=True, help_text="Thumbs up / rated conversations * 100; null when none rated."
    )
    rated_count = serializers.IntegerField()
    rated_up_count = serializers.IntegerField()
    rated_down_count = serializers.IntegerField()
    escalations_by_reason = serializers.ListField(child=serializers.DictField())
    closed_after_escalation = serializers.IntegerField()
    median_escalation_to_close_seconds = serializers.IntegerField(allow_null=True)
    first_response_target_minutes = serializers.IntegerField(
        help_text="SUPPORT_FIRST_RESPONSE_MINUTES: business minutes from escalation to a person's first reply."
    )
    first_responses = serializers.IntegerField(
        help_text="Escalated conversations (started in the window) a person has answered: "
        "GET conversations?first_response=responded."
    )
    median_first_response_seconds = serializers.IntegerField(
        allow_null=True, help_text="Median wall-clock seconds from escalation to a person's first reply."
    )
    first_response_on_time = serializers.IntegerField(help_text="Answered by the due time: first_response=on_time.")
    first_response_late = serializers.IntegerField(
        help_text="Answered after the due time, or unanswered past it: first_response=late."
    )
    first_response_within_target_pct = serializers.FloatField(
        allow_null=True, help_text="on_time / (on_time + late) * 100; null when none is judged yet."
    )
    client_reported_conversations = _client_reported()
    client_reported_messages = _client_reported()
    client_reported_input_tokens = _client_reported()
    client_reported_output_tokens = _client_reported()
    client_reported_cost_micros = _client_reported()
    client_reported_cost_usd = serializers.FloatField()
    business_id = serializers.CharField(help_text="The business filter asked for (blank: every business).")
    audience = serializers.CharField(help_text="The audience filter asked for (blank: both).")
    by_business = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per business: conversations, auto-resolved, escalated, cost; drill down with "
        "GET conversations?business_id=...",
    )
    by_audience = serializers.ListField(child=serializers.DictField(), help_text="The same per audience.")
    ungrounded_conversations = serializers.IntegerField(
        help_text="Conversations with at least one reply that answered a product question citing no knowledge-base "
        "article (issue 14); the dashboard's ticket list lists them with ?ungrounded=on."
    )
    # Outcomes (support/outcomes.py): drill down with GET conversations?outcome=...
    by_outcome = serializers.ListField(
        child=serializers.DictField(), help_text="Conversations and their cost by outcome: outcome=<value>."
    )
    resolution_denominator = serializers.IntegerField(
        help_text="Confirmed + assumed + escalated + negative (abandoned and open are left out): "
        "outcome=confirmed,assumed,escalated,negative."
    )
    resolved_count = serializers.IntegerField(help_text="Confirmed + assumed: outcome=confirmed,assumed.")
    confirmed_count = serializers.IntegerField(help_text="The customer said it helped: outcome=confirmed.")
    assumed_count = serializers.IntegerField(
        help_text="Answered, no return within SUPPORT_RESOLUTION_WINDOW_HOURS: outcome=assumed."
    )
    resolution_pct = serializers.FloatField(allow_null=True, help_text="resolved / denominator * 100.")
    confirmed_resolution_pct = serializers.FloatField(allow_null=True, help_text="confirmed / denominator * 100.")
    assumed_resolution_pct = serializers.FloatField(allow_null=True, help_text="assumed / denominator * 100.")
    open_count = serializers.IntegerField(help_text="Not decided yet (window still running): outcome=open.")
    cost_per_resolution_usd = serializers.FloatField(
        allow_null=True, help_text="The window's total cost / resolved conversations."
    )
    cost_per_confirmed_resolution_usd = serializers.FloatField(
        allow_null=True, help_text="The window's total cost / confirmed conversations."
    )
    escalated_outcome_count = serializers.IntegerField(help_text="outcome=escalated.")
    escalated_cost_micros = serializers.IntegerField(help_text="Claude cost of the escalated conversations.")
    escalated_cost_usd = serializers.FloatField()
    abandoned_count = serializers.IntegerField(help_text="outcome=abandoned.")
    abandoned_cost_micros = serializers.IntegerField(help_text="Claude cost of the abandoned conversations.")
    abandoned_cost_usd = serializers.FloatField()


class AnalyticsViewSet(ApiViewSet):
    policy_name = "analytics"

    @extend_schema(
        parameters=[AnalyticsInputSerializer],
        responses={200: AnalyticsSerializer, **errors(400)},
        operation_id="analytics",
    )
    def list(self, request: Request) -> Response:
        values = validated(AnalyticsInputSerializer, request.query_params)
        return Response(
            selectors.analytics_summary(
                days=values["days"],
                date_from=values.get("date_from"),
                date_to=values.get("date_to"),
                business_id=values.get("business_id", ""),
                audience=values.get("audience", ""),
                user=request.user,
            )
        )
