"""The staff API: first-response due times, the overdue flag, the queue's order and the drill-down filter."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from support import services
from support.models import Conversation, EscalationReason, Status

pytestmark = pytest.mark.django_db

URL = "/api/support/conversations"


def _ticket(summary: str, *, due_in: int | None, answered_in: int | None = None) -> Conversation:
    conversation, _ = services.conversation_create()
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(
        summary=summary,
        status=Status.NEEDS_REVIEW,
        escalated=due_in is not None,
        escalation_reason=EscalationReason.HUMAN_REQUESTED if due_in is not None else "",
        first_response_due_at=None if due_in is None else now + timedelta(minutes=due_in),
        first_human_response_at=None if answered_in is None else now + timedelta(minutes=answered_in),
    )
    return conversation


@pytest.fixture
def tickets() -> None:
    _ticket("later", due_in=50)
    _ticket("never escalated", due_in=None)
    _ticket("overdue", due_in=-10)
    _ticket("on time", due_in=-30, answered_in=-40)
    _ticket("late", due_in=-30, answered_in=-5)
    _ticket("soon", due_in=5)


def _summaries(staff: APIClient, query: str) -> list[str]:
    response = staff.get(f"{URL}?{query}")
    assert response.status_code == 200, response.content
    return [row["summary"] for row in response.json()["results"]]


def test_the_staff_shape_has_the_due_time_and_the_overdue_flag(staff: APIClient, tickets: None) -> None:
    rows = {row["summary"]: row for row in staff.get(URL).json()["results"]}
    assert rows["overdue"]["overdue"] is True
    assert rows["overdue"]["first_response_due_at"] and rows["overdue"]["first_human_response_at"] is None
    assert [name for name, row in rows.items() if row["overdue"]] == ["overdue"]
    assert rows["never escalated"]["first_response_due_at"] is None
    assert rows["on time"]["first_human_response_at"] is not None


def test_the_default_order_stays_newest_first_and_ordering_due_is_the_queues(staff: APIClient, tickets: None) -> None:
    assert _summaries(staff, "") == ["soon", "late", "on time", "overdue", "never escalated", "later"]
    assert _summaries(staff, "ordering=due") == ["overdue", "soon", "later", "late", "on time", "never escalated"]
    refused = staff.get(f"{URL}?ordering=sideways")
    assert refused.status_code == 400 and "ordering" in refused.json()["errors"]


def test_the_first_response_filter_drills_down_to_each_figures_tickets(staff: APIClient, tickets: None) -> None:
    assert _summaries(staff, "first_response=on_time") == ["on time"]
    assert _summaries(staff, "first_response=late") == ["late", "overdue"]
    assert _summaries(staff, "first_response=responded") == ["late", "on time"]
    response = staff.get(f"{URL}?first_response=soonish")
    assert response.status_code == 400
    assert "first_response" in response.json()["errors"]


def test_the_widget_never_sees_the_due_time(anon: APIClient) -> None:
    created = anon.post(URL, {}, format="json").json()
    assert "first_response_due_at" not in created and "overdue" not in created


def _escalated_at(minutes_ago: int, *, answered_after: int | None) -> Conversation:
    """A ticket escalated `minutes_ago` through the service (due in 60 business minutes, always open)."""
    conversation, _ = services.conversation_create()
    escalated = timezone.now() - timedelta(minutes=minutes_ago)
    with override_settings(SUPPORT_BUSINESS_HOURS="", SUPPORT_FIRST_RESPONSE_MINUTES=60):
        with mock.patch("django.utils.timezone.now", return_value=escalated):
            services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)
    if answered_after is not None:
        services.conversation_first_response_mark(
            conversation=conversation, at=escalated + timedelta(minutes=answered_after)
        )
    return conversation


@override_settings(SUPPORT_FIRST_RESPONSE_MINUTES=60)
def test_analytics_give_the_median_first_response_and_the_share_within_target(staff: APIClient) -> None:
    _escalated_at(300, answered_after=10)
    _escalated_at(300, answered_after=30)
    _escalated_at(300, answered_after=90)  # late
    _escalated_at(120, answered_after=None)  # overdue: late
    _escalated_at(20, answered_after=None)  # still inside its target: not judged yet
    services.conversation_create()  # never escalated
    data = staff.get("/api/support/analytics?days=7").json()
    assert data["first_response_target_minutes"] == 60
    assert data["first_responses"] == 3
    assert data["median_first_response_seconds"] == 30 * 60
    assert (data["first_response_on_time"], data["first_response_late"]) == (2, 2)
    assert data["first_response_within_target_pct"] == 50.0
    window = f"created_from={data['date_from']}&created_to={data['date_to']}"
    for kind, count in [("responded", 3), ("on_time", 2), ("late", 2)]:
        listed = staff.get(f"{URL}?first_response={kind}&{window}").json()
        assert listed["count"] == count, kind


def test_with_no_escalations_the_first_response_figures_are_empty(staff: APIClient) -> None:
    data = staff.get("/api/support/analytics?days=7").json()
    assert data["first_responses"] == 0
    assert data["median_first_response_seconds"] is None
    assert data["first_response_within_target_pct"] is None


@override_settings(SUPPORT_FIRST_RESPONSE_MINUTES=60)
def test_an_escalation_without_a_due_time_counts_in_no_first_response_figure(staff: APIClient) -> None:
    _escalated_at(300, answered_after=10)
    undated = _escalated_at(300, answered_after=90)
    Conversation.objects.filter(pk=undated.pk).update(first_response_due_at=None)
    data = staff.get("/api/support/analytics?days=7").json()
    assert (data["first_responses"], data["first_response_on_time"], data["first_response_late"]) == (1, 1, 0)
    assert data["median_first_response_seconds"] == 10 * 60
