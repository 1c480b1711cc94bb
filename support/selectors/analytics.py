"""Analytics of a window of whole days, read from the daily rollups (never from messages); the first-response
figures alone from the window's escalated conversations, on an index (support.selectors.first_response)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

from django.db.models import QuerySet, Sum

from support import db, outcomes, rollups
from support.models import (
    DailyCloseRollup,
    DailyConversationRollup,
    DailyGroundingRollup,
    DailyModelUsageRollup,
    DailyQuestionRollup,
    DailyUsageRollup,
    EscalationReason,
    Rating,
    Status,
)
from support.pricing import micros_to_usd
from support.selectors.dates import Window, window_for
from support.selectors.first_response import first_response_summary
from support.selectors.messages import CLIENT_COLUMNS, USAGE_COLUMNS
from support.selectors.scope import allowed_business_ids

#: One rollup row as read (field name to value).
Row = dict[str, Any]
#: Rollup rows summed per day, keyed by day.
Rows = Mapping[Any, Mapping[str, int]]


def analytics_summary(
    *,
    days: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    today: date | None = None,
    business_id: str = "",
    audience: str = "",
    user: Any = None,
) -> dict[str, Any]:
    """Analytics of the conversations started in a window, read from the daily rollups only.

    Cost is O(rollup rows in the window), never O(messages), in a fixed number of queries whatever the
    window: each rollup table's rows are read once and every figure is summed from them here (one round
    trip per table, not one per figure: on MongoDB each command costs more than the folding does).
    Every figure counts the conversations started in the window and everything logged in them, so
    the ticket list filtered the same way (see drill-down links) adds up to the same numbers.
    `business_id` and `audience` narrow every figure; with `user`, only the businesses that staff
    user may see (StaffScope) are summed.
    """
    window = window_for(days=days, date_from=date_from, date_to=date_to, today=today)
    venue = venue_filter(business_id=business_id, audience=audience, user=user)
    in_window = {"day__gte": window.date_from, "day__lte": window.date_to, **venue}
    states = db.rows_values(DailyConversationRollup.objects.filter(**in_window), *STATE_FIELDS)
    usage = _usage_rows(in_window, every_venue=not venue)
    per_day = _states_per_day(states)
    cost_per_day = _usage_per_day(usage)
    by_status, by_rating = _by_status_and_rating(states)
    return {
        **_headline(window, by_status=by_status, per_day=per_day, cost_per_day=cost_per_day),
        "business_id": business_id,
        "audience": audience,
        "top_questions": _top_questions(in_window),
        **_by_day(window, per_day=per_day, cost_per_day=cost_per_day),
        "by_status": [{"status": value, "count": by_status.get(value, 0)} for value, _ in Status.choices],
        **_breakdowns(states),
        "by_model": _by_model(usage),
        "escalations_by_reason": _escalations_by_reason(states),
        **_escalation_to_close(DailyCloseRollup.objects.filter(**in_window)),
        **_csat(by_rating),
        **_outcomes(states, total_cost=sum(row["cost"] for row in cost_per_day.values())),
        **_client_reported(cost_per_day.values()),
        # The one figure group read from conversations, not rollups (see selectors.first_response).
        **first_response_summary(window, venue=venue),
        **_grounding(in_window),
    }


def venue_filter(*, business_id: str = "", audience: str = "", user: Any = None) -> dict[str, Any]:
    """The filter on business_id and audience that both rollup rows and conversations take.

    With `user`, limited to the businesses that staff user may see (an empty list when none)."""
    venue: dict[str, Any] = {}
    if business_id:
        venue["business_id"] = business_id
    if audience:
        venue["audience"] = audience
    if user is not None:
        allowed = allowed_business_ids(user=user)
        if allowed is not None:
            venue["business_id__in"] = sorted(allowed)
    return venue


#: The groups _breakdowns sums: by_source, by_business, by_audience.
_BREAKDOWN_FIELDS = ("source", "business_id", "audience")
#: What is read of each DailyConversationRollup row: its whole key and its two counters.
STATE_FIELDS = (
    "day",
    *_BREAKDOWN_FIELDS,
    "status",
    "escalated",
    "escalation_reason",
    "rating",
    "outcome",
    "conversations",
    "cost_micros",
)
#: What is read of each usage row (DailyModelUsageRollup or DailyUsageRollup): its day, model and every counter.
USAGE_FIELDS = ("day", "model", *USAGE_COLUMNS, *CLIENT_COLUMNS)


def _usage_rows(in_window: dict[str, Any], *, every_venue: bool) -> list[Row]:
    """The window's usage per day and model. Of every venue, from the rows already summed over sources and
    venues (a few a day); narrowed to a venue, from that venue's rows (the per-day and per-model sums below
    add them up the same way)."""
    table = DailyModelUsageRollup if every_venue else DailyUsageRollup
    return db.rows_values(table.objects.filter(**in_window), *USAGE_FIELDS)


def _breakdowns(states: list[Row]) -> dict[str, Any]:
    """Conversations, resolution, escalation and cost per source, per business and per audience; the cost is
    the state rows' (each conversation's cost, on the row it is counted in), as in the cost per outcome."""
    counts: dict[str, Counter[tuple[str, Any]]] = {name: Counter() for name in ("n", "auto", "esc", "cost")}
    for row in states:
        n = row["conversations"] or 0
        for name in _BREAKDOWN_FIELDS:
            key = (name, row[name])
            counts["n"][key] += n
            counts["auto"][key] += n if row["status"] == Status.AUTO_RESOLVED else 0
            counts["esc"][key] += n if row["escalated"] else 0
            counts["cost"][key] += row["cost_micros"] or 0
    return {
        "by_source": _by_source(counts),
        "by_business": _by_venue(counts, field="business_id"),
        "by_audience": _by_venue(counts, field="audience"),
    }


def _by_venue(counts: dict[str, Counter[tuple[str, Any]]], *, field: str) -> list[dict[str, Any]]:
    """Per business (or audience), busiest first; rows with neither conversations nor cost are left out."""
    keys = {key for figure in counts.values() for name, key in figure if name == field}
    rows = []
    for key in keys:
        n, auto, esc, cost = (counts[figure][(field, key)] for figure in ("n", "auto", "esc", "cost"))
        if not (n or cost):
            continue
        rows.append(
            {
                field: key,
                "conversations": n,
                "auto_resolved": auto,
                "auto_resolved_pct": _pct(auto, n),
                "escalated": esc,
                "escalated_pct": _pct(esc, n),
                "cost_micros": cost,
                "cost_usd": micros_to_usd(cost),
            }
        )
    return sorted(rows, key=lambda row: (-row["conversations"], row[field]))


def _grounding(in_window: dict[str, Any]) -> dict[str, int]:
    """Issue 14: conversations with at least one ungrounded reply (Claude answered a product question
    citing no article), from their daily rollup."""
    rows = DailyGroundingRollup.objects.filter(**in_window).aggregate(n=Sum("ungrounded_conversations"))
    return {"ungrounded_conversations": int(rows["n"] or 0)}


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _figure(rows: Rows, key: Any, name: str) -> int:
    """One summed figure of `rows[key]`, 0 when the row is missing."""
    row = rows.get(key)
    return row.get(name, 0) if row else 0


def _states_per_day(states: list[Row]) -> Rows:
    per_day: dict[Any, Counter[str]] = {}
    for row in states:
        sums = per_day.setdefault(row["day"], Counter())
        sums["n"] += row["conversations"] or 0
        sums["esc"] += (row["conversations"] or 0) if row["escalated"] else 0
    return per_day


def _usage_per_day(usage: list[Row]) -> Rows:
    per_day: dict[Any, Counter[str]] = {}
    for row in usage:
        sums = per_day.setdefault(row["day"], Counter())
        sums["cost"] += row["cost_micros"] or 0
        sums["messages"] += row["messages"] or 0
        for name in CLIENT_COLUMNS:
            sums[name] += row[name] or 0
    return per_day


def _by_status_and_rating(states: list[Row]) -> tuple[dict[str, int], dict[str, int]]:
    by_status: Counter[str] = Counter()
    by_rating: Counter[str] = Counter()
    for row in states:
        by_status[row["status"]] += row["conversations"] or 0
        by_rating[row["rating"]] += row["conversations"] or 0
    return dict(by_status), dict(by_rating)


def _headline(window: Window, *, by_status: dict[str, int], per_day: Rows, cost_per_day: Rows) -> dict[str, Any]:
    """The window's totals, rates and costs per conversation."""
    total = sum(by_status.values())
    auto = by_status.get(Status.AUTO_RESOLVED, 0)
    escalated = sum(row["esc"] for row in per_day.values())
    message_total = sum(row["messages"] for row in cost_per_day.values())
    cost = sum(row["cost"] for row in cost_per_day.values())
    return {
        "days": window.days,
        "date_from": window.date_from.isoformat(),
        "date_to": window.date_to.isoformat(),
        "total_conversations": total,
        "total_messages": message_total,
        "auto_resolved": auto,
        "escalated": escalated,
        "auto_resolved_pct": _pct(auto, total),
        "escalated_pct": _pct(escalated, total),
        "avg_messages_per_conversation": round(message_total / total, 2) if total else 0.0,
        "total_cost_micros": cost,
        "total_cost_usd": micros_to_usd(cost),
        "cost_per_conversation_usd": micros_to_usd(round(cost / total)) if total else None,
        "cost_per_auto_resolved_usd": micros_to_usd(round(cost / auto)) if auto else None,
    }


def _by_day(window: Window, *, per_day: Rows, cost_per_day: Rows) -> dict[str, list[dict[str, Any]]]:
    """One point per day of the window (days without conversations count 0)."""
    conversations_by_day = []
    cost_by_day = []
    escalation_rate_by_day = []
    for day in window.each_day():
        n = _figure(per_day, day, "n")
        esc = _figure(per_day, day, "esc")
        day_cost = _figure(cost_per_day, day, "cost")
        conversations_by_day.append({"date": day.isoformat(), "count": n})
        cost_by_day.append({"date": day.isoformat(), "cost_micros": day_cost, "cost_usd": micros_to_usd(day_cost)})
        escalation_rate_by_day.append(
            {"date": day.isoformat(), "conversations": n, "escalated": esc, "escalated_pct": _pct(esc, n)}
        )
    return {
        "conversations_by_day": conversations_by_day,
        "cost_by_day": cost_by_day,
        "escalation_rate_by_day": escalation_rate_by_day,
    }


def _by_source(counts: dict[str, Counter[tuple[str, Any]]]) -> list[dict[str, Any]]:
    sources = sorted({key for figure in counts.values() for name, key in figure if name == "source"})
    by_source = [
        {
            "source": source,
            "conversations": counts["n"][("source", source)],
            "escalated": counts["esc"][("source", source)],
            "cost_micros": counts["cost"][("source", source)],
            "cost_usd": micros_to_usd(counts["cost"][("source", source)]),
        }
        for source in sources
    ]
    return [row for row in by_source if row["conversations"] or row["cost_micros"]]


def _by_model(usage: list[Row]) -> list[dict[str, Any]]:
    sums: dict[str, Counter[str]] = {}
    for row in usage:
        if row["model"]:
            model = sums.setdefault(row["model"], Counter())
            for figure in USAGE_COLUMNS:
                model[figure] += row[figure] or 0
    return [
        {
            "model": model,
            **{figure: figures[figure] for figure in USAGE_COLUMNS},
            "cost_usd": micros_to_usd(figures["cost_micros"]),
        }
        for model, figures in sorted(sums.items())
        if figures["messages"] or figures["cost_micros"]
    ]


def _escalations_by_reason(states: list[Row]) -> list[dict[str, Any]]:
    reasons = dict(EscalationReason.choices)
    counts: Counter[str] = Counter()
    for row in states:
        if row["escalated"]:
            counts[row["escalation_reason"]] += row["conversations"] or 0
    return [
        {"reason": reason, "label": reasons.get(reason, "—"), "count": n}
        for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if n > 0
    ]


def _escalation_to_close(closes: QuerySet[DailyCloseRollup]) -> dict[str, Any]:
    """How many escalated conversations were closed, and the median time from escalation to close."""
    buckets = {
        row["close_bucket"]: row["n"] or 0 for row in closes.values("close_bucket").annotate(n=Sum("conversations"))
    }
    median = rollups.median_from_buckets(buckets)
    return {
        "closed_after_escalation": sum(n for n in buckets.values() if n > 0),
        "median_escalation_to_close_seconds": None if median is None else round(median),
    }


def _client_reported(per_day: Collection[Mapping[str, Any]]) -> dict[str, Any]:
    """The share of the window's usage the widget reported itself (SUPPORT_CLIENT_LOGGING=seed): unverified.

    Already included in the totals above. Drill down with GET conversations?origin=client."""
    sums = {name: sum(row[name] for row in per_day) for name in CLIENT_COLUMNS}
    return {
        "client_reported_conversations": sums["client_conversations"],
        "client_reported_messages": sums["client_messages"],
        "client_reported_input_tokens": sums["client_input_tokens"],
        "client_reported_output_tokens": sums["client_output_tokens"],
        "client_reported_cost_micros": sums["client_cost_micros"],
        "client_reported_cost_usd": micros_to_usd(sums["client_cost_micros"]),
    }


def _top_questions(in_window: dict[str, Any], *, limit: int = 10) -> list[dict[str, Any]]:
    """The window's most asked first questions, summed exactly over the window's rows in one grouped query
    (the day range is served by the rollup's key, which starts with day), whatever the window's length."""
    # Questions that sum to nothing sort last, so leaving them out of the page read keeps the same list; a
    # HAVING in the query would cost MongoDB a second sum of every row of the window.
    top = (
        DailyQuestionRollup.objects.filter(**in_window)
        .values("question_key")
        .annotate(n=Sum("conversations"))
        .order_by("-n", "question_key")[:limit]
    )
    return [{"question": row["question_key"], "count": row["n"]} for row in top if row["n"] > 0]


# CSAT: the widget's thumbs up/down.
def _csat(by_rating: dict[str, int]) -> dict[str, Any]:
    """Share of rated conversations rated up (the widget's thumbs), over the window's conversations.

    Drill down with GET conversations?rating=rated|up|down and the same created_from/created_to.
    """
    up, down = by_rating.get(Rating.UP, 0), by_rating.get(Rating.DOWN, 0)
    rated = up + down
    return {
        "csat_pct": _pct(up, rated) if rated else None,
        "rated_count": rated,
        "rated_up_count": up,
        "rated_down_count": down,
    }


# Outcomes (issue 14): what the bot really resolved, and what it cost (support/outcomes.py has the rules).
def _outcomes(states: list[Row], *, total_cost: int) -> dict[str, Any]:
    """Conversations and their cost by outcome; the resolution rate and the cost per resolution
    (outcomes.resolution_figures says how). Drill down with GET conversations?outcome=... and the same
    created_from/created_to."""
    counts: Counter[str] = Counter()
    costs: Counter[str] = Counter()
    for row in states:
        counts[row["outcome"]] += row["conversations"] or 0
        costs[row["outcome"]] += row["cost_micros"] or 0
    return outcomes.resolution_figures(counts=dict(counts), costs=dict(costs), total_cost=total_cost)
