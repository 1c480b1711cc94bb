"""First human response analytics: the median time to a person's first reply and the share within target.

Read directly from the window's escalated conversations (not from rollups): one list of three timestamps,
on the (escalated, -created_at) index, so the cost grows with the escalated tickets of the window, never
with messages. The sets counted are selectors.first_response_q's, the
ticket list's `first_response` filter, so every figure drills down to exactly its tickets.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import median
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from support import db
from support.models import Conversation
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
    wall-clock time from escalation to a person's first reply. `venue`: analytics.venue_filter's conditions.

    One read of three timestamps per escalated conversation with a due time, sorted here into the sets
    first_response_q filters (one round trip rather than a conditional count and a list: on MongoDB each
    command scanned the window's escalations again)."""
    now = now or timezone.now()
    # Those without a due time are skipped below, not filtered out in the query: with only the equality and
    # the range, any MongoDB serves the read from the (escalated, -created_at) index (SecantusDB otherwise
    # walked every conversation of the window). Unordered: the figures do not depend on the order.
    rows = _in_window(window, venue or {}).order_by()
    on_time = late = 0
    waits = []
    for row in db.rows_values(rows, "escalated_at", "first_response_due_at", "first_human_response_at"):
        escalated, due, replied = row["escalated_at"], row["first_response_due_at"], row["first_human_response_at"]
        if due is None:  # no first-response target was set for this escalation
            continue
        if replied is None:
            if due < now:  # overdue: awaiting_first_response_q past its due time
                late += 1
            continue
        # escalated_at is always set with the due time; a reply is never before the escalation it answers.
        waits.append(max((replied - escalated).total_seconds(), 0.0) if escalated else 0.0)
        if replied <= due:
            on_time += 1
        else:
            late += 1
    judged = on_time + late
    return {
        "first_response_target_minutes": settings.SUPPORT_FIRST_RESPONSE_MINUTES,
        "first_responses": len(waits),
        "median_first_response_seconds": round(median(waits)) if waits else None,
        "first_response_on_time": on_time,
        "first_response_late": late,
        "first_response_within_target_pct": round(100.0 * on_time / judged, 2) if judged else None,
    }
