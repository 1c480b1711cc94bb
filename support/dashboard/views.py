"""Staff pages under /dashboard/: queue, ticket list (every drill-down lands here), ticket, analytics, CSV.

Function views: validate with a form, read with selectors, write with services, render.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from support import budget, rollups, selectors, services
from support.dashboard import charts, markdown
from support.dashboard.forms import (
    TICKET_ACTIONS,
    AnalyticsWindowForm,
    AssignForm,
    ContactForm,
    ConversationFilterForm,
    NotesForm,
    QueueFilterForm,
    StatusForm,
)
from support.models import QUEUE_STATUSES, EscalationReason, MessageOrigin, Source, Status
from support.pricing import micros_to_usd

PAGE_SIZE = 50


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in staff only: anonymous visitors go to the login page, other users get 403."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("Staff only.")
        return view(request, *args, **kwargs)

    return wrapped


def list_url(**params: Any) -> str:
    """The ticket list filtered by `params` (what every dashboard figure links to)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "", [])}, doseq=True)
    return f"{reverse('dashboard:conversations')}?{query}" if query else reverse("dashboard:conversations")


def _totals(queryset: Any) -> dict[str, int]:
    totals = queryset.aggregate(n=Count("pk"), messages=Sum("message_count"), cost=Sum("cost_micros"))
    return {
        "conversations": totals["n"] or 0,
        "messages": totals["messages"] or 0,
        "cost_micros": totals["cost"] or 0,
        "cost_usd": micros_to_usd(totals["cost"] or 0),
    }


def _waited(conversation: Any, now: Any) -> timedelta:
    return now - (conversation.escalated_at or conversation.created_at)


# --- Queue -----------------------------------------------------------------------------------
@require_GET
@staff_required
def queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return render(request, "dashboard/queue.html", {"form": form, "page": None}, status=400)
    filters = form.to_filters()
    oldest_first = form.oldest_first
    selected = filters.status
    # Counts per status under the same source/assignee filters, whichever status tab is open.
    filters.status = []
    counts = {
        row["status"]: row["n"]
        for row in selectors.ticket_list(filters=filters).order_by().values("status").annotate(n=Count("pk"))
    }
    filters.status = selected
    tickets = selectors.ticket_list(filters=filters, oldest_first=oldest_first)
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    for conversation in page:
        conversation.waited_display = rollups.humanize_seconds(_waited(conversation, now).total_seconds())
    base = request.GET.copy()
    base.pop("status", None)
    base.pop("page", None)
    tabs = [
        {
            "label": "All open",
            "count": sum(counts.values()),
            "url": f"?{base.urlencode()}",
            "active": not selected or set(selected) == set(QUEUE_STATUSES),
        }
    ]
    for status in QUEUE_STATUSES:
        query = base.copy()
        query["status"] = status.value
        tabs.append(
            {
                "label": status.label,
                "count": counts.get(status.value, 0),
                "url": f"?{query.urlencode()}",
                "active": selected == [status.value],
            }
        )
    context = {"form": form, "page": page, "tabs": tabs, "budget_warning": budget.budget_warning()}
    return render(request, "dashboard/queue.html", context)


# --- Ticket list (drill-down target) and CSV -------------------------------------------------
def _filtered(request: HttpRequest) -> tuple[ConversationFilterForm, Any]:
    form = ConversationFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return form, None
    return form, selectors.conversation_list(filters=form.to_filters(), oldest_first=form.oldest_first)


@require_GET
@staff_required
def conversations(request: HttpRequest) -> HttpResponse:
    form, queryset = _filtered(request)
    if queryset is None:
        return render(request, "dashboard/conversations.html", {"form": form, "page": None}, status=400)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "totals": _totals(queryset),
        "query": query.urlencode(),
        "csv_url": f"{reverse('dashboard:conversations_csv')}?{query.urlencode()}",
    }
    return render(request, "dashboard/conversations.html", context)


CSV_COLUMNS = (
    "id",
    "created_at",
    "source",
    "status",
    "escalated",
    "escalation_reason",
    "escalated_at",
    "closed_at",
    "assigned_to",
    "contact_email",
    "summary",
    "page_url",
    "messages",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "cost_usd",
)


def _csv_safe(value: Any) -> str:
    """Cells a spreadsheet would run as a formula (=, +, -, @) are prefixed with a quote."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(queryset: Any) -> Iterator[list[Any]]:
    yield list(CSV_COLUMNS)
    for c in queryset.iterator(chunk_size=1000):
        yield [
            str(c.pk),
            c.created_at.isoformat(),
            c.source,
            c.status,
            "true" if c.escalated else "false",
            c.escalation_reason,
            c.escalated_at.isoformat() if c.escalated_at else "",
            c.closed_at.isoformat() if c.closed_at else "",
            _csv_safe(c.assigned_to.get_username() if c.assigned_to else ""),
            _csv_safe(c.contact_email),
            _csv_safe(c.summary),
            _csv_safe(c.page_url),
            c.message_count,
            c.total_input_tokens,
            c.total_output_tokens,
            c.total_cache_read_tokens,
            c.total_cache_write_tokens,
            c.cost_micros,
            f"{micros_to_usd(c.cost_micros):.6f}",
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@staff_required
def conversations_csv(request: HttpRequest) -> HttpResponse:
    form, queryset = _filtered(request)
    if queryset is None:
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in _csv_rows(queryset)), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="rezvo-tickets-{stamp}.csv"'
    return response


# --- Ticket ----------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
@staff_required
def ticket(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = selectors.conversation_get(conversation_id=conversation_id)
    failed: dict[str, Any] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        form_class = TICKET_ACTIONS.get(action)
        if form_class is None:
            return HttpResponse("Unknown action.", status=400, content_type="text/plain")
        form = form_class(request.POST)
        if form.is_valid():
            try:
                services.conversation_update(conversation=conversation, actor=request.user, changes=form.cleaned_data)
            except services.ConversationConflict:
                # Reload the page so staff see what changed meanwhile before trying again.
                messages.error(request, "The ticket kept changing while it was saved; nothing was changed. Try again.")
                return redirect("dashboard:ticket", conversation_id=conversation.pk)
            messages.success(request, "Ticket updated.")
            return redirect("dashboard:ticket", conversation_id=conversation.pk)
        failed[action] = form
    turns = list(selectors.message_list(conversation=conversation))
    for turn in turns:
        turn.html = markdown.render(turn.content)
        turn.has_usage = bool(
            turn.input_tokens
            or turn.output_tokens
            or turn.cache_read_tokens
            or turn.cache_write_tokens
            or turn.cost_micros
        )
    events = list(selectors.event_list(conversation=conversation))
    escalations = selectors.escalation_list(conversation=conversation, events=events, turns=turns)
    context = {
        "conversation": conversation,
        "turns": turns,
        "events": events,
        "escalations": escalations,
        "latest_escalation": escalations[0] if escalations and conversation.escalated else None,
        "notes": list(selectors.ticket_note_list(conversation=conversation)),
        "status_form": failed.get("status") or StatusForm(initial={"status": conversation.status}),
        "assign_form": failed.get("assign")
        or AssignForm(initial={"assigned_to": str(conversation.assigned_to_id or "")}),
        "notes_form": failed.get("notes") or NotesForm(),
        "contact_form": failed.get("contact") or ContactForm(initial={"contact_email": conversation.contact_email}),
        "waited": rollups.humanize_seconds(_waited(conversation, timezone.now()).total_seconds()),
        "statuses": Status.choices,
    }
    return render(request, "dashboard/ticket.html", context, status=400 if failed else 200)


# --- Analytics -------------------------------------------------------------------------------
def _usd(value: float) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}".rstrip("0").rstrip(".") if value else "$0"


def _short(day: date) -> str:
    return day.strftime("%d %b")


def analytics_figures(data: dict[str, Any]) -> dict[str, Any]:
    """Every number on the analytics page with the ticket-list link behind it.

    `count` is how many tickets that link lists; tests compare it with the list itself.
    """
    window = {"created_from": data["date_from"], "created_to": data["date_to"]}
    every = list_url(**window)
    auto_url = list_url(**window, status=Status.AUTO_RESOLVED)
    escalated_url = list_url(**window, escalated="true")
    total, auto, escalated = data["total_conversations"], data["auto_resolved"], data["escalated"]
    median = data["median_escalation_to_close_seconds"]
    cards = [
        {"label": "Conversations", "value": f"{total:,}", "url": every, "count": total},
        {"label": "Messages", "value": f"{data['total_messages']:,}", "url": every, "count": total},
        {"label": "Auto-resolved", "value": f"{data['auto_resolved_pct']}%", "url": auto_url, "count": auto},
        {"label": "Escalated", "value": f"{data['escalated_pct']}%", "url": escalated_url, "count": escalated},
        {
            "label": "Avg messages / conversation",
            "value": f"{data['avg_messages_per_conversation']}",
            "url": every,
            "count": total,
        },
        {"label": "Total cost", "value": _usd(data["total_cost_usd"]), "url": every, "count": total},
        {
            # Part of the total: usage the widget logged itself (SUPPORT_CLIENT_LOGGING=seed), unverified.
            "label": "of which reported by the widget",
            "value": _usd(data["client_reported_cost_usd"]),
            "url": list_url(**window, origin=MessageOrigin.CLIENT),
            "count": data["client_reported_conversations"],
        },
        {
            "label": "Cost / conversation",
            "value": _usd(data["cost_per_conversation_usd"] or 0),
            "url": every,
            "count": total,
        },
        {
            "label": "Cost / auto-resolved ticket",
            "value": _usd(data["cost_per_auto_resolved_usd"] or 0),
            "url": auto_url,
            "count": auto,
        },
        {
            "label": "Median escalation → close",
            "value": rollups.humanize_seconds(median),
            "url": list_url(**window, closed_after_escalation="on"),
            "count": data["closed_after_escalation"],
        },
        {
            "label": "CSAT (thumbs up / rated)",
            "value": "n/a" if data["csat_pct"] is None else f"{data['csat_pct']}%",
            "url": list_url(**window, rating="rated"),
            "count": data["rated_count"],
        },
    ]
    reason_labels = dict(EscalationReason.choices)
    source_labels = dict(Source.choices)
    status_labels = dict(Status.choices)
    tables = {
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
        "sources": [
            {
                **row,
                "label": source_labels.get(row["source"], row["source"]),
                "url": list_url(**window, source=row["source"]),
                "escalated_url": list_url(**window, source=row["source"], escalated="true"),
                "cost": _usd(row["cost_usd"]),
            }
            for row in data["by_source"]
        ],
        "models": [
            {**row, "url": list_url(**window, model=row["model"]), "cost": _usd(row["cost_usd"])}
            for row in data["by_model"]
        ],
    }
    conversations_points, cost_points, rate_points = [], [], []
    for by_day, cost_day, rate_day in zip(
        data["conversations_by_day"], data["cost_by_day"], data["escalation_rate_by_day"], strict=True
    ):
        day = date.fromisoformat(by_day["date"])
        day_url = list_url(created_from=day.isoformat(), created_to=day.isoformat())
        conversations_points.append(
            charts.Point(_short(day), by_day["count"], day_url, f"{_short(day)}: {by_day['count']} conversations")
        )
        cost_points.append(
            charts.Point(_short(day), cost_day["cost_usd"], day_url, f"{_short(day)}: {_usd(cost_day['cost_usd'])}")
        )
        rate_points.append(
            charts.Point(
                _short(day),
                rate_day["escalated_pct"],
                list_url(created_from=day.isoformat(), created_to=day.isoformat(), escalated="true"),
                f"{_short(day)}: {rate_day['escalated_pct']}% ({rate_day['escalated']} of "
                f"{rate_day['conversations']}) escalated",
            )
        )
    chart_list = [
        charts.bar_chart(title="Conversations per day", points=conversations_points, value_label=lambda v: f"{v:g}"),
        charts.bar_chart(title="Cost per day", points=cost_points, value_label=_usd),
        charts.bar_chart(title="Escalation rate per day", points=rate_points, value_label=lambda v: f"{v:g}%"),
    ]
    # What each bar's link lists, in the same order as the bars (for tests and tooltips).
    bar_counts = [
        [row["count"] for row in data["conversations_by_day"]],
        [row["count"] for row in data["conversations_by_day"]],
        [row["escalated"] for row in data["escalation_rate_by_day"]],
    ]
    return {"cards": cards, "tables": tables, "charts": chart_list, "bar_counts": bar_counts}


@require_GET
@staff_required
def analytics(request: HttpRequest) -> HttpResponse:
    form = AnalyticsWindowForm(request.GET)
    if not form.is_valid():
        return render(request, "dashboard/analytics.html", {"form": form, "data": None}, status=400)
    window = form.window()
    data = selectors.analytics_summary(date_from=window.date_from, date_to=window.date_to)
    selected_days = None if (request.GET.get("date_from") or request.GET.get("date_to")) else window.days
    context = {
        "form": form,
        "data": data,
        "selected_days": selected_days,
        "windows": [7, 30, 90],
        **analytics_figures(data),
        "budget_warning": budget.budget_warning(),
    }
    return render(request, "dashboard/analytics.html", context)
