"""The analytics page's cards, tables and charts, each figure with the ticket-list link behind it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from support import rollups
from support.dashboard import charts
from support.dashboard.links import list_url
from support.models import Audience, EscalationReason, MessageOrigin, Outcome, Source, Status


def analytics_figures(data: dict[str, Any]) -> dict[str, Any]:
    """Every number on the analytics page with the ticket-list link behind it.

    `count` is how many tickets that link lists; tests compare it with the list itself.
    """
    # Every link keeps the business and audience the figures were filtered by.
    window = {
        "created_from": data["date_from"],
        "created_to": data["date_to"],
        "business_id": data.get("business_id", ""),
        "audience": data.get("audience", ""),
    }
    return {
        "cards": [
            *_volume_cards(data, window),
            *_cost_cards(data, window),
            *_outcome_cards(data, window),
            *_resolution_cards(data, window),
        ],
        "tables": {**_tables(data, window), "outcomes": _outcome_rows(data, window)},
        "charts": _charts(data, window),
        "bar_counts": _bar_counts(data),
    }


def usd(value: float) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}".rstrip("0").rstrip(".") if value else "$0"


def _short(day: date) -> str:
    return day.strftime("%d %b")


def _volume_cards(data: dict[str, Any], window: dict[str, str]) -> list[dict[str, Any]]:
    every = list_url(**window)
    total, auto, escalated = data["total_conversations"], data["auto_resolved"], data["escalated"]
    return [
        {"label": "Conversations", "value": f"{total:,}", "url": every, "count": total},
        {"label": "Messages", "value": f"{data['total_messages']:,}", "url": every, "count": total},
        {
            "label": "Auto-resolved",
            "value": f"{data['auto_resolved_pct']}%",
            "url": list_url(**window, status=Status.AUTO_RESOLVED),
            "count": auto,
        },
        {
            "label": "Escalated",
            "value": f"{data['escalated_pct']}%",
            "url": list_url(**window, escalated="true"),
            "count": escalated,
        },
        {
            "label": "Avg messages / conversation",
            "value": f"{data['avg_messages_per_conversation']}",
            "url": every,
            "count": total,
        },
    ]


def _cost_cards(data: dict[str, Any], window: dict[str, str]) -> list[dict[str, Any]]:
    every = list_url(**window)
    total, auto = data["total_conversations"], data["auto_resolved"]
    return [
        {"label": "Total cost", "value": usd(data["total_cost_usd"]), "url": every, "count": total},
        {
            # Part of the total: usage the widget logged itself (SUPPORT_CLIENT_LOGGING=seed), unverified.
            "label": "of which reported by the widget",
            "value": usd(data["client_reported_cost_usd"]),
            "url": list_url(**window, origin=MessageOrigin.CLIENT),
            "count": data["client_reported_conversations"],
        },
        {
            "label": "Cost / conversation",
            "value": usd(data["cost_per_conversation_usd"] or 0),
            "url": every,
            "count": total,
        },
        {
            "label": "Cost / auto-resolved ticket",
            "value": usd(data["cost_per_auto_resolved_usd"] or 0),
            "url": list_url(**window, status=Status.AUTO_RESOLVED),
            "count": auto,
        },
    ]


def _outcome_cards(data: dict[str, Any], window: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "label": "Median escalation → close",
            "value": rollups.humanize_seconds(data["median_escalation_to_close_seconds"]),
            "url": list_url(**window, closed_after_escalation="on"),
            "count": data["closed_after_escalation"],
        },
        {
            "label": "Median first human response",
            "value": rollups.humanize_seconds(data["median_first_response_seconds"]),
            "url": list_url(**window, first_response="responded"),
            "count": data["first_responses"],
        },
        {
            "label": f"First reply within target ({data['first_response_target_minutes']} business min)",
            "value": _pct_or_na(data["first_response_within_target_pct"]),
            "url": list_url(**window, first_response="on_time"),
            "count": data["first_response_on_time"],
        },
        {
            "label": "First reply late or overdue",
            "value": f"{data['first_response_late']:,}",
            "url": list_url(**window, first_response="late"),
            "count": data["first_response_late"],
        },
        {
            "label": "Answered without a source",
            "value": f"{data['ungrounded_conversations']:,}",
            "url": list_url(**window, ungrounded="on"),
            "count": data["ungrounded_conversations"],
        },
        {
            "label": "CSAT (thumbs up / rated)",
            "value": "n/a" if data["csat_pct"] is None else f"{data['csat_pct']}%",
            "url": list_url(**window, rating="rated"),
            "count": data["rated_count"],
        },
    ]


def _pct_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value}%"


def _tables(data: dict[str, Any], window: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    reason_labels = dict(EscalationReason.choices)
    status_labels = dict(Status.choices)
    return {
        "questions": [{**row, "url": list_url(**window, question=row["question"])} for row in data["top_questions"]],
        "reasons": [
            {
                **row,
                "label": reason_labels.get(row["reason"], "No reason recorded"),
                "url": list_url(**window, escalated="true", escalation_reason=row["reason"]),
            }
            for row in data["escalations_by_reason"]
        ],
        "statuses": [
            {**row, "label": status_labels[row["status"]], "url": list_url(**window, status=row["status"])}
            for row in data["by_status"]
        ],
        "sources": _source_rows(data, window),
        "models": [
            {**row, "url": list_url(**window, model=row["model"]), "cost": usd(row["cost_usd"])}
            for row in data["by_model"]
        ],
        "businesses": _venue_rows(data["by_business"], window, field="business_id"),
        "audiences": _venue_rows(data["by_audience"], window, field="audience"),
    }


#: How the per-venue tables name conversations that gave no business or audience, and the filter listing them.
_NONE_GIVEN = {"business_id": "(no business)", "audience": "(no audience)"}
_NONE_FILTER = {"business_id": "no_business", "audience": "no_audience"}


def _venue_rows(rows: list[dict[str, Any]], window: dict[str, str], *, field: str) -> list[dict[str, Any]]:
    """Per business (or audience): conversations, resolution, escalation and cost, each linked to its tickets."""
    labels = dict(Audience.choices) if field == "audience" else {}
    out = []
    for row in rows:
        key = row[field]
        # A blank filter means "any", so the conversations without one are asked for by no_business/no_audience.
        scoped = {**window, field: key} if key else {**window, _NONE_FILTER[field]: "on"}
        out.append(
            {
                **row,
                "label": labels.get(key, key) if key else _NONE_GIVEN[field],
                "url": list_url(**scoped),
                "auto_url": list_url(**scoped, status=Status.AUTO_RESOLVED),
                "escalated_url": list_url(**scoped, escalated="true"),
                "cost": usd(row["cost_usd"]),
            }
        )
    return out


def _source_rows(data: dict[str, Any], window: dict[str, str]) -> list[dict[str, Any]]:
    source_labels = dict(Source.choices)
    return [
        {
            **row,
            "label": source_labels.get(row["source"], row["source"]),
            "url": list_url(**window, source=row["source"]),
            "escalated_url": list_url(**window, source=row["source"], escalated="true"),
            "cost": usd(row["cost_usd"]),
        }
        for row in data["by_source"]
    ]


def _charts(data: dict[str, Any], window: dict[str, str]) -> list[charts.Chart]:
    """Conversations, cost and escalation rate per day; each bar links to that day's tickets."""
    venue = {"business_id": window["business_id"], "audience": window["audience"]}
    conversations_points, cost_points, rate_points = [], [], []
    for by_day, cost_day, rate_day in zip(
        data["conversations_by_day"], data["cost_by_day"], data["escalation_rate_by_day"], strict=True
    ):
        day = date.fromisoformat(by_day["date"])
        day_url = list_url(created_from=day.isoformat(), created_to=day.isoformat(), **venue)
        conversations_points.append(
            charts.Point(_short(day), by_day["count"], day_url, f"{_short(day)}: {by_day['count']} conversations")
        )
        cost_points.append(
            charts.Point(_short(day), cost_day["cost_usd"], day_url, f"{_short(day)}: {usd(cost_day['cost_usd'])}")
        )
        rate_points.append(
            charts.Point(
                _short(day),
                rate_day["escalated_pct"],
                list_url(created_from=day.isoformat(), created_to=day.isoformat(), escalated="true", **venue),
                f"{_short(day)}: {rate_day['escalated_pct']}% ({rate_day['escalated']} of "
                f"{rate_day['conversations']}) escalated",
            )
        )
    return [
        charts.bar_chart(title="Conversations per day", points=conversations_points, value_label=lambda v: f"{v:g}"),
        charts.bar_chart(title="Cost per day", points=cost_points, value_label=usd),
        charts.bar_chart(title="Escalation rate per day", points=rate_points, value_label=lambda v: f"{v:g}%"),
    ]


def _bar_counts(data: dict[str, Any]) -> list[list[int]]:
    """What each bar's link lists, in the same order as the bars (for tests and tooltips)."""
    return [
        [row["count"] for row in data["conversations_by_day"]],
        [row["count"] for row in data["conversations_by_day"]],
        [row["escalated"] for row in data["escalation_rate_by_day"]],
    ]


# Outcomes (issue 14, support/outcomes.py): what the bot really resolved, and at what cost.
RESOLVED = [Outcome.CONFIRMED, Outcome.ASSUMED]
DECIDED = [Outcome.CONFIRMED, Outcome.ASSUMED, Outcome.ESCALATED, Outcome.NEGATIVE]


def _resolution_cards(data: dict[str, Any], window: dict[str, str]) -> list[dict[str, Any]]:
    """The resolution rate (confirmed and assumed apart) and the cost per resolution and per outcome."""

    def card(label: str, value: str, outcomes: Sequence[str], count: int) -> dict[str, Any]:
        return {"label": label, "value": value, "url": list_url(**window, outcome=list(outcomes)), "count": count}

    return [
        card(
            f"Resolved by the bot (of {data['resolution_denominator']:,} decided)",
            _pct_or_na(data["resolution_pct"]),
            RESOLVED,
            data["resolved_count"],
        ),
        card(
            "of which confirmed by the customer",
            _pct_or_na(data["confirmed_resolution_pct"]),
            [Outcome.CONFIRMED],
            data["confirmed_count"],
        ),
        card(
            "of which assumed (no return)",
            _pct_or_na(data["assumed_resolution_pct"]),
            [Outcome.ASSUMED],
            data["assumed_count"],
        ),
        card("Decided conversations", f"{data['resolution_denominator']:,}", DECIDED, data["resolution_denominator"]),
        card("Cost / resolution", _usd_or_na(data["cost_per_resolution_usd"]), RESOLVED, data["resolved_count"]),
        card(
            "Cost / confirmed resolution",
            _usd_or_na(data["cost_per_confirmed_resolution_usd"]),
            [Outcome.CONFIRMED],
            data["confirmed_count"],
        ),
        card(
            "Cost of escalated conversations",
            usd(data["escalated_cost_usd"]),
            [Outcome.ESCALATED],
            data["escalated_outcome_count"],
        ),
        card(
            "Cost of abandoned conversations",
            usd(data["abandoned_cost_usd"]),
            [Outcome.ABANDONED],
            data["abandoned_count"],
        ),
    ]


def _usd_or_na(value: float | None) -> str:
    return "n/a" if value is None else usd(value)


def _outcome_rows(data: dict[str, Any], window: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {**row, "url": list_url(**window, outcome=[row["outcome"]]), "cost": usd(row["cost_usd"])}
        for row in data["by_outcome"]
    ]
