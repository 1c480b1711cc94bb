"""Analytics of a window of whole days, read from the daily rollups (never from messages); the first-response
figures alone from the window's escalated conversations, on an index (support.selectors.first_response)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, Sum

from support import outcomes, rollups
from support.models import (
    DailyCloseRollup,
    DailyConversationRollup,
    DailyGroundingRollup,
    DailyQuestionRollup,
    DailyUsageRollup,
    EscalationReason,
    Rating,
    Status,
)
from support.pricing import micros_to_usd
from support.selectors.dates import Window, window_for
from support.selectors.first_response import first_response_summary
from support.selectors.messages import CLIENT_COLUMNS
from support.selectors.scope import allowed_business_ids

#: Rollup rows summed per day (or per source), keyed by day (or source).
Rows = dict[Any, Mapping[str, Any]]


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

    Cost is O(days in the window) (times the few sources, statuses and models), never O(messages).
    Every figure counts the conversations started in the window and everything logged in them, so
    the ticket list filtered the same way (see drill-down links) adds up to the same numbers.
    `business_id` and `audience` narrow every figure; with `user`, only the businesses that staff
    user may see (StaffScope) are summed.
    """
    window = window_for(days=days, date_from=date_from, date_to=date_to, today=today)
    venue = venue_filter(business_id=business_id, audience=audience, user=user)
    in_window = {"day__gte": window.date_from, "day__lte": window.date_to, **venue}
    states = DailyConversationRollup.objects.filter(**in_window)
    usage = DailyUsageRollup.objects.filter(**in_window)
    per_day = _states_per_day(states)
    cost_per_day = _usage_per_day(usage)
    by_status, by_rating = _by_status_and_rating(states)
    return {
        **_headline(window, by_status=by_status, per_day=per_day, cost_per_day=cost_per_day),
        "business_id": business_id,
        "audience": audience,
        "top_questions": _top_questions(window, venue=venue),
        **_by_day(window, per_day=per_day, cost_per_day=cost_per_day),
        "by_status": [{"status": value, "count": by_status.get(value, 0)} for value, _ in Status.choices],
        **_breakdowns(states, usage),
        "by_model": _by_model(usage),
        "escalations_by_reason": _escalations_by_reason(states),
        **_escalation_to_close(DailyCloseRollup.objects.filter(**in_window)),
        **_csat(by_rating),
        **_outcomes(states, total_cost=sum((row["cost"] or 0) for row in cost_per_day.values())),
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


def _breakdowns(states: QuerySet[DailyConversationRollup], usage: QuerySet[DailyUsageRollup]) -> dict[str, Any]:
    """Conversations, resolution, escalation and cost per source, per business and per audience.

    Two grouped queries (rollup rows by source, business and audience) serve all three tables."""
    counts: dict[str, Counter[tuple[str, Any]]] = {name: Counter() for name in ("n", "auto", "esc", "cost")}
    for row in states.values(*_BREAKDOWN_FIELDS).annotate(
        n=Sum("conversations"),
        auto=Sum("conversations", filter=Q(status=Status.AUTO_RESOLVED)),
        esc=Sum("conversations", filter=Q(escalated=True)),
    ):
        for name in _BREAKDOWN_FIELDS:
            for figure in ("n", "auto", "esc"):
                counts[figure][(name, row[name])] += row[figure] or 0
    for row in usage.values(*_BREAKDOWN_FIELDS).annotate(cost=Sum("cost_micros")):
        for name in _BREAKDOWN_FIELDS:
            counts["cost"][(name, row[name])] += row["cost"] or 0
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
    """One summed figure of `rows[key]`, 0 when the row is missing or its sum is NULL."""
    row = rows.get(key)
    return (row.get(name) or 0) if row else 0


def _states_per_day(states: QuerySet[DailyConversationRollup]) -> Rows:
    return {
        row["day"]: row
        for row in states.values("day").annotate(
            n=Sum("conversations"),
            esc=Sum("conversations", filter=Q(escalated=True)),
        )
    }


def _usage_per_day(usage: QuerySet[DailyUsageRollup]) -> Rows:
    return {
        row["day"]: row
        for row in usage.values("day").annotate(
            cost=Sum("cost_micros"), messages=Sum("messages"), **{name: Sum(name) for name in CLIENT_COLUMNS}
        )
    }


def _by_status_and_rating(states: QuerySet[DailyConversationRollup]) -> tuple[dict[str, int], dict[str, int]]:
    by_status: dict[str, int] = {}
    by_rating: dict[str, int] = {}
    # One query serves both the status breakdown and CSAT.
    for row in states.values("status", "rating").annotate(n=Sum("conversations")):
        by_status[row["status"]] = by_status.get(row["status"], 0) + (row["n"] or 0)
        by_rating[row["rating"]] = by_rating.get(row["rating"], 0) + (row["n"] or 0)
    return by_status, by_rating


def _headline(window: Window, *, by_status: dict[str, int], per_day: Rows, cost_per_day: Rows) -> dict[str, Any]:
    """The window's totals, rates and costs per conversation."""
    total = sum(by_status.values())
    auto = by_status.get(Status.AUTO_RESOLVED, 0)
    escalated = sum((row["esc"] or 0) for row in per_day.values())
    message_total = sum((row["messages"] or 0) for row in cost_per_day.values())
    cost = sum((row["cost"] or 0) for row in cost_per_day.values())
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


def _by_model(usage: QuerySet[DailyUsageRollup]) -> list[dict[str, Any]]:
    return [
        {
            "model": row["model"],
            "conversations": row["conv"] or 0,
            "messages": row["n"] or 0,
            "input_tokens": row["inp"] or 0,
            "output_tokens": row["out"] or 0,
            "cache_read_tokens": row["cr"] or 0,
            "cache_write_tokens": row["cw"] or 0,
            "cost_micros": row["cost"] or 0,
            "cost_usd": micros_to_usd(row["cost"] or 0),
        }
        for row in usage.exclude(model="")
        .values("model")
        .annotate(
            conv=Sum("conversations"),
            n=Sum("messages"),
            inp=Sum("input_tokens"),
            out=Sum("output_tokens"),
            cr=Sum("cache_read_tokens"),
            cw=Sum("cache_write_tokens"),
            cost=Sum("cost_micros"),
        )
        .order_by("model")
        if row["n"] or row["cost"]
    ]


def _escalations_by_reason(states: QuerySet[DailyConversationRollup]) -> list[dict[str, Any]]:
    reasons = dict(EscalationReason.choices)
    return [
        {"reason": row["escalation_reason"], "label": reasons.get(row["escalation_reason"], "—"), "count": row["n"]}
        for row in states.filter(escalated=True)
        .values("escalation_reason")
        .annotate(n=Sum("conversations"))
        .filter(n__gt=0)
        .order_by("-n", "escalation_reason")
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
    sums = {name: sum((row[name] or 0) for row in per_day) for name in CLIENT_COLUMNS}
    return {
        "client_reported_conversations": sums["client_conversations"],
        "client_reported_messages": sums["client_messages"],
        "client_reported_input_tokens": sums["client_input_tokens"],
        "client_reported_output_tokens": sums["client_output_tokens"],
        "client_reported_cost_micros": sums["client_cost_micros"],
        "client_reported_cost_usd": micros_to_usd(sums["client_cost_micros"]),
    }


#: How many of each day's most asked questions are candidates for the window's top ten.
TOP_QUESTION_CANDIDATES_PER_DAY = 20


def _top_questions(window: Window, *, venue: dict[str, Any], limit: int = 10) -> list[dict[str, Any]]:
    """The window's most asked first questions, in O(days) whatever the number of distinct questions.

    Candidates are each day's TOP_QUESTION_CANDIDATES_PER_DAY most asked (one UNION query over an
    index on (day, -conversations)); their window totals are then summed exactly. A question that is
    never near the top on any day could in theory be missed; counts shown are always exact.
    """
    candidates = _question_candidates(window.each_day(), per_day=TOP_QUESTION_CANDIDATES_PER_DAY, venue=venue)
    if not candidates:
        return []
    return [
        {"question": row["question_key"], "count": row["n"]}
        for row in DailyQuestionRollup.objects.filter(
            day__gte=window.date_from, day__lte=window.date_to, question_key__in=sorted(candidates), **venue
        )
        .values("question_key")
        .annotate(n=Sum("conversations"))
        .filter(n__gt=0)
        .order_by("-n", "question_key")[:limit]
    ]


#: Days per UNION query: SQLite refuses a compound SELECT of more than 500 terms, so a long window
#: (an "all time" report, or a hostile date_from=2000-01-01) is asked for in several round trips.
QUESTION_CANDIDATE_DAYS_PER_QUERY = 200


def _question_candidates(days: list[date], *, per_day: int, venue: dict[str, Any]) -> set[str]:
    """Each day's `per_day` most asked question keys, in one round trip per 200 days.

    Rows are per business and audience too: a question counts as a candidate when one of its rows is
    among the day's top rows (the counts shown are still summed exactly over the window)."""
    candidates: set[str] = set()
    for start in range(0, len(days), QUESTION_CANDIDATE_DAYS_PER_QUERY):
        chunk = days[start : start + QUESTION_CANDIDATE_DAYS_PER_QUERY]
        candidates |= _question_candidates_of(chunk, per_day=per_day, venue=venue)
    return candidates


def _venue_sql(venue: dict[str, Any]) -> tuple[str, list[Any]]:
    """venue_filter()'s conditions as SQL for the raw candidates query (fixed column names, values as params)."""
    clauses, params = [], []
    for key, value in venue.items():
        column = key.removesuffix("__in")
        if column not in ("business_id", "audience"):
            raise ValueError(f"unknown venue filter {key!r}")
        if key.endswith("__in"):
            clauses.append(f"{column} IN ({', '.join(['%s'] * len(value))})" if value else "1 = 0")
            params.extend(value)
        else:
            clauses.append(f"{column} = %s")
            params.append(value)
    return "".join(f" AND {clause}" for clause in clauses), params


def _question_candidates_of(days: list[date], *, per_day: int, venue: dict[str, Any]) -> set[str]:
    if not days:
        return set()
    if connection.features.supports_slicing_ordering_in_compound:  # MongoDB ($unionWith), PostgreSQL
        top = (
            DailyQuestionRollup.objects.filter(conversations__gt=0, **venue)
            .order_by("-conversations")
            .values_list("question_key", flat=True)
        )
        parts = [top.filter(day=day)[:per_day] for day in days]
        return set(parts[0].union(*parts[1:], all=True))
    # SQLite allows LIMIT in a compound member only inside a subquery; the SQL is written out once
    # rather than compiled per day (compiling 90 querysets would cost more than running them).
    table = connection.ops.quote_name(DailyQuestionRollup._meta.db_table)
    where, venue_params = _venue_sql(venue)
    member = (
        f"SELECT * FROM (SELECT question_key FROM {table} WHERE day = %s AND conversations > 0{where} "
        f"ORDER BY conversations DESC LIMIT {int(per_day)})"
    )
    params = [p for d in days for p in (connection.ops.adapt_datefield_value(d), *venue_params)]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join([member] * len(days)), params)
        return {row[0] for row in cursor.fetchall()}


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
def _outcomes(states: QuerySet[DailyConversationRollup], *, total_cost: int) -> dict[str, Any]:
    """Conversations and their cost by outcome; the resolution rate and the cost per resolution
    (outcomes.resolution_figures says how). Drill down with GET conversations?outcome=... and the same
    created_from/created_to."""
    counts: dict[str, int] = {}
    costs: dict[str, int] = {}
    for row in states.values("outcome").annotate(n=Sum("conversations"), cost=Sum("cost_micros")):
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + (row["n"] or 0)
        costs[row["outcome"]] = costs.get(row["outcome"], 0) + (row["cost"] or 0)
    return outcomes.resolution_figures(counts=counts, costs=costs, total_cost=total_cost)
