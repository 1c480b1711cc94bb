"""The query parameters that filter GET conversations and GET tickets."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.request import Request

from support import selectors
from support.api.base import Pagination
from support.api.serializers import validated
from support.models import Audience, EscalationReason, MessageOrigin, Outcome, Rating, Source, Status
from support.selectors import ConversationFilters
from support.validators import validate_end_date


class _CsvChoiceField(serializers.CharField):
    """`status=needs_review,open` or repeated `status=` parameters, each checked against the choices."""

    def __init__(self, *, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        self.allowed = [value for value, _ in choices]
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:  # type: ignore[override]  # a list, not one string
        values = [v.strip() for v in str(data).split(",") if v.strip()]
        bad = [v for v in values if v not in self.allowed]
        if bad:
            raise serializers.ValidationError(f"Unknown value {bad[0]!r}; choose from {', '.join(self.allowed)}.")
        return values


class FilterSerializer(serializers.Serializer):
    status = _CsvChoiceField(choices=Status.choices, required=False)
    source = _CsvChoiceField(choices=Source.choices, required=False)  # type: ignore[assignment]  # not Field.source
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
    outcome = _CsvChoiceField(
        choices=Outcome.choices,
        required=False,
        help_text="What the conversation achieved, e.g. `confirmed,assumed` (resolved): the outcome figures' "
        "drill-down.",
    )
    page = serializers.IntegerField(required=False, min_value=1)
    origin = serializers.ChoiceField(
        choices=MessageOrigin.choices,
        required=False,
        help_text="Conversations with at least one turn of this origin; `client`: usage reported by the widget.",
    )
    first_response = serializers.ChoiceField(
        choices=selectors.FIRST_RESPONSE_CHOICES,
        required=False,
        help_text="Escalated conversations by their first human response: `on_time` (by the due time), `late` "
        "(after it, or unanswered past it), `responded` (answered at all). The analytics figures' drill-down.",
    )
    ordering = serializers.ChoiceField(
        choices=[("newest", "Newest first"), ("due", "Waiting for a first reply first, soonest due first")],
        required=False,
        help_text="`due`: the queue's order, by first_response_due_at. Default `newest`.",
    )
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=Pagination.max_page_size)
    business_id = serializers.CharField(
        required=False, max_length=128, help_text="One business (venue): the conversations' business_id."
    )
    audience = serializers.ChoiceField(choices=Audience.choices, required=False, help_text="Diners or owners.")
    no_business = serializers.BooleanField(
        required=False, default=False, help_text="Only conversations that gave no business_id."
    )
    no_audience = serializers.BooleanField(required=False, default=False, help_text="Only those that gave no audience.")

    def validate_assigned_to(self, value: str) -> Any:
        if value == "none":
            return value
        user = selectors.staff_user_get(user_id=value)
        if user is None:
            raise serializers.ValidationError("No active staff user has this id (or use 'none').")
        return user

    @staticmethod
    def to_filters(values: dict[str, Any]) -> ConversationFilters:
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
            first_response=values.get("first_response", ""),
            outcome=values.get("outcome", []),
            order="due" if values.get("ordering") == "due" else "",
            business_id=values.get("business_id", ""),
            audience=values.get("audience", ""),
            no_business=values.get("no_business", False),
            no_audience=values.get("no_audience", False),
        )


def read_filters(request: Request) -> ConversationFilters:
    query = {key: ",".join(request.query_params.getlist(key)) for key in request.query_params}
    values = validated(FilterSerializer, query)
    if values.get("created_from") and values.get("created_to") and values["created_from"] > values["created_to"]:
        raise exceptions.ValidationError({"created_from": ["Must not be after created_to."]})
    return FilterSerializer.to_filters(values)
