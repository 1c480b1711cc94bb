"""First human response analytics: the median time to a person's first reply and the share within target.

Read directly from the window's escalated conversations (not from rollups): one aggregate and one list of
two timestamps, both on the (escalated, -created_at) index, so the cost grows with the escalated
tickets of the window, never with messages. The sets counted are selectors.first_response_q's, the
ticket list's `first_response` filter, so every figure drills down to exactly its tickets.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import median
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone

from support.models import Conversation
from support.selectors.conversations import first_response_q
from support.selectors.dates import Window, utc_midnight


def _in_window(window: Window, venue: dict[str, Any]) -> QuerySet[Conversation]:
    """The window's conversations, bounded the way the ticket list's created_from/created_to are."""
    return Conversation.objects.filter(
        escalated=True,
        created_at__gte=utc_midnight(window.date_from),
        created_at__lt=utc_midnight(window.date_to + timedelta(days=1)),
        **venue,
    )


def first_response_summary(
    window: Window, *, now: datetime | None = None, venue: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Escalated conversations started in the window: answered on time, late (or overdue), and the median
    wall-clock time from escalation to a person's first reply. `venue`: analytics.venue_filter's conditions."""
    now = now or timezone.now()
    conversations = _in_window(window, venue or {})
    counts = conversations.aggregate(
        on_time=Count("pk", filter=first_response_q("on_time", now=now)),
        late=Count("pk", filter=first_response_q("late", now=now)),
    )
    answered = list(
        conversations.filter(first_response_q("responded", now=now)).values_list(
            "escalated_at", "first_human_response_at"
        )
    )
    # escalated_at is always set with the due time; a reply is never before the escalation it answers.
    waits = [
        max((replied - escalated).total_seconds(), 0.0) if escalated and replied else 0.0
        for escalated, replied in answered
    ]
    on_time, late = counts["on_time"] or 0, counts["late"] or 0
    judged = on_time + late
    return {
        "first_response_target_minutes": settings.SUPPORT_FIRST_RESPONSE_MINUTES,
        "first_responses": len(waits),
        "median_first_response_seconds": round(median(waits)) if waits else None,
        "first_response_on_time": on_time,
        "first_response_late": late,
        "first_response_within_target_pct": round(100.0 * on_time / judged, 2) if judged else None,
    }
