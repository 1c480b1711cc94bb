"""The queue orders tickets by their first-response due time and flags the overdue ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from support import services
from support.models import Conversation, EscalationReason, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def _ticket(summary: str, *, due_in: int | None, answered: bool = False, status: str = Status.NEEDS_REVIEW) -> Any:
    conversation, _ = services.conversation_create()
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(
        summary=summary,
        status=status,
        escalated=due_in is not None,
        escalation_reason=EscalationReason.HUMAN_REQUESTED if due_in is not None else "",
        first_response_due_at=None if due_in is None else now + timedelta(minutes=due_in),
        first_human_response_at=now - timedelta(minutes=1) if answered else None,
    )
    return Conversation.objects.get(pk=conversation.pk)


@pytest.fixture
def queue_tickets() -> dict[str, Any]:
    return {
        "later": _ticket("due later", due_in=50),
        "open": _ticket("opened by staff, never escalated", due_in=None, status=Status.OPEN),
        "overdue": _ticket("overdue", due_in=-10),
        "answered": _ticket("answered late", due_in=-30, answered=True, status=Status.IN_PROGRESS),
        "soon": _ticket("due soon", due_in=5),
    }


def test_the_queue_lists_tickets_waiting_for_a_first_reply_soonest_due_first(
    browser: Client, queue_tickets: dict[str, Any]
) -> None:
    shown = [c.summary for c in browser.get("/dashboard/").context["page"]]
    assert shown[:3] == ["overdue", "due soon", "due later"]
    # Then the rest, newest first: they are not waiting for a first reply.
    assert shown[3:] == ["answered late", "opened by staff, never escalated"]


def test_the_queue_flags_only_unanswered_tickets_past_their_due_time(
    browser: Client, queue_tickets: dict[str, Any]
) -> None:
    response = browser.get("/dashboard/")
    flagged = [c.summary for c in response.context["page"] if c.first_response_overdue]
    assert flagged == ["overdue"]
    html = response.content.decode()
    assert html.count('class="overdue"') == 1
    assert "reply due" in html


def test_the_queue_can_still_sort_newest_first(browser: Client, queue_tickets: dict[str, Any]) -> None:
    shown = [c.summary for c in browser.get("/dashboard/?order=newest").context["page"]]
    assert shown == ["due soon", "answered late", "overdue", "opened by staff, never escalated", "due later"]


def test_a_closed_ticket_is_never_overdue(queue_tickets: dict[str, Any]) -> None:
    closed = _ticket("closed unanswered", due_in=-10, status=Status.CLOSED)
    assert not closed.first_response_overdue
    assert queue_tickets["overdue"].first_response_overdue


def test_the_first_response_cards_drill_down_to_exactly_their_tickets(browser: Client) -> None:
    _ticket("answered on time", due_in=-30, answered=True)  # answered a minute ago, due 30 min ago: late
    on_time = _ticket("answered early", due_in=30, answered=True)
    _ticket("overdue", due_in=-10)
    _ticket("waiting", due_in=10)
    Conversation.objects.filter(pk=on_time.pk).update(escalated_at=timezone.now() - timedelta(minutes=5))
    cards = {card["label"]: card for card in browser.get("/dashboard/analytics/").context["cards"]}
    median = cards["Median first human response"]
    within = next(card for label, card in cards.items() if label.startswith("First reply within target"))
    late = cards["First reply late or overdue"]
    assert (median["count"], within["count"], late["count"]) == (2, 1, 2)
    assert within["value"] == "33.33%"
    for card in (median, within, late):
        listed = browser.get(card["url"])
        assert listed.status_code == 200
        assert listed.context["totals"]["conversations"] == card["count"], card["label"]


def test_the_ticket_page_shows_the_due_time_and_the_overdue_flag(browser: Client) -> None:
    overdue = _ticket("overdue", due_in=-10)
    html = browser.get(f"/dashboard/conversations/{overdue.pk}/").content.decode()
    assert "First reply due" in html and 'class="overdue"' in html
    answered = _ticket("answered", due_in=-10, answered=True)
    html = browser.get(f"/dashboard/conversations/{answered.pk}/").content.decode()
    assert "First reply due" in html and 'class="overdue"' not in html
