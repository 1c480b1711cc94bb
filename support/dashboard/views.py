"""Staff pages under /dashboard/: queue, ticket list (every drill-down lands here), ticket, analytics, CSV.

Function views: validate with a form, read with selectors, write with services, render.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from support import rollups, selectors, services
from support.dashboard import markdown
from support.dashboard.export import Echo, csv_rows
from support.dashboard.figures import analytics_figures
from support.dashboard.forms import (
    TICKET_ACTIONS,
    AnalyticsWindowForm,
    AssignForm,
    ContactForm,
    ConversationFilterForm,
    NotesForm,
    QueueFilterForm,
    QueueLiveForm,
    ReplyForm,
    StatusForm,
)
from support.models import QUEUE_STATUSES, Conversation, Message, Status
from support.pricing import micros_to_usd
from support.services import budget

PAGE_SIZE = 50
#: What the ticket page answers for an id that does not exist (or cannot be one).
NO_CONVERSATION = "No conversation matches the given id."

View = Callable[..., HttpResponseBase]


def staff_required(view: View) -> View:
    """Signed-in staff only: anonymous visitors go to the login page, other users get 403."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("Staff only.")
        return view(request, *args, **kwargs)

    return wrapped


def _totals(queryset: QuerySet[Conversation]) -> dict[str, Any]:
    totals = queryset.aggregate(n=Count("pk"), messages=Sum("message_count"), cost=Sum("cost_micros"))
    return {
        "conversations": totals["n"] or 0,
        "messages": totals["messages"] or 0,
        "cost_micros": totals["cost"] or 0,
        "cost_usd": micros_to_usd(totals["cost"] or 0),
    }


def _waited(conversation: Conversation, now: datetime) -> timedelta:
    return now - (conversation.escalated_at or conversation.created_at)


# --- Queue -----------------------------------------------------------------------------------
@require_GET
@staff_required
def queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return render(request, "dashboard/queue.html", {"form": form, "page": None}, status=400)
    context = {**_queue_context(request, form), "now": timezone.now()}
    return render(request, "dashboard/queue.html", context)


@require_GET
@staff_required
def queue_live(request: HttpRequest) -> HttpResponse:
    """The queue's tabs and table as an HTML fragment, polled by static/dashboard/queue.js every few seconds.

    Its data-new-escalations counts tickets escalated after `since` (the page's opening or last focus,
    in the server's clock, which this fragment also hands back as data-now).
    """
    form = QueueLiveForm(request.GET, user=request.user)
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    now = timezone.now()
    since = form.cleaned_data.get("since")
    new = selectors.queue_escalations_since(since=since, user=request.user) if since else 0
    context = {**_queue_context(request, form), "now": now, "new_escalations": new}
    return render(request, "dashboard/_queue_live.html", context)


def _queue_context(request: HttpRequest, form: QueueFilterForm) -> dict[str, Any]:
    filters = form.to_filters()
    oldest_first = form.oldest_first
    selected = filters.status
    # Counts per status under the same source/assignee filters, whichever status tab is open.
    filters.status = []
    counts = {
        row["status"]: row["n"]
        for row in selectors.ticket_list(filters=filters, user=request.user)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
    }
    filters.status = selected
    tickets = selectors.ticket_list(filters=filters, oldest_first=oldest_first, user=request.user)
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    for conversation in page:
        conversation.waited_display = rollups.humanize_seconds(_waited(conversation, now).total_seconds())
    tabs = _status_tabs(request.GET, selected=selected, counts=counts)
    query = request.GET.copy()
    query.pop("since", None)
    return {
        "form": form,
        "page": page,
        "tabs": tabs,
        "budget_warning": budget.budget_warning(),
        "live_url": f"{reverse('dashboard:queue_live')}?{query.urlencode()}",
    }


def _status_tabs(params: QueryDict, *, selected: list[str], counts: dict[str, int]) -> list[dict[str, Any]]:
    """ "All open" and one tab per queue status, each keeping the other filters of the page."""
    base = params.copy()
    base.pop("status", None)
    base.pop("page", None)
    base.pop("since", None)
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
    return tabs


# --- Ticket list (drill-down target) and CSV -------------------------------------------------
def _filtered(request: HttpRequest) -> tuple[ConversationFilterForm, QuerySet[Conversation] | None]:
    form = ConversationFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return form, None
    return form, selectors.conversation_list(
        filters=form.to_filters(), oldest_first=form.oldest_first, user=request.user
    )


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


@require_GET
@staff_required
def conversations_csv(request: HttpRequest) -> HttpResponseBase:
    form, queryset = _filtered(request)
    if queryset is None:
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    writer = csv.writer(Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in csv_rows(queryset)), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="rezvo-tickets-{stamp}.csv"'
    return response


# --- Ticket ----------------------------------------------------------------------------------
@dataclass
class Turn:
    """A message as the ticket page shows it: its fields, its Markdown as HTML, whether it has usage."""

    message: Message
    html: str
    has_usage: bool
    author_label: str = ""

    def __getattr__(self, name: str) -> Any:
        # Only called for names the Turn lacks; "message" itself is missing only mid-copy or unpickling.
        if name == "message":
            raise AttributeError(name)
        return getattr(self.message, name)


def turn(message: Message) -> Turn:
    usage = (
        message.input_tokens
        or message.output_tokens
        or message.cache_read_tokens
        or message.cache_write_tokens
        or message.cost_micros
    )
    return Turn(
        message=message,
        html=markdown.render(message.content),
        has_usage=bool(usage),
        author_label=_author_label(getattr(message, "author", None)),
    )


def _author_label(author: Any) -> str:
    """Who wrote an agent turn, as staff know them: full name, else username; a deleted user is 'Staff'."""
    if author is None:
        return "Staff"
    return author.get_full_name() or author.get_username()


@require_http_methods(["GET", "POST"])
@staff_required
def ticket(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = selectors.conversation_get(conversation_id=conversation_id, user=request.user)
    if conversation is None:
        raise Http404(NO_CONVERSATION)
    failed: dict[str, Any] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        form_class = TICKET_ACTIONS.get(action)
        if form_class is None:
            return HttpResponse("Unknown action.", status=400, content_type="text/plain")
        form = form_class(request.POST)
        if form.is_valid():
            return _update(request, conversation, changes=form.cleaned_data)
        failed[action] = form
    return render(
        request,
        "dashboard/ticket.html",
        ticket_context(conversation, failed, viewer=request.user),
        status=400 if failed else 200,
    )


def _update(request: HttpRequest, conversation: Conversation, *, changes: dict[str, Any]) -> HttpResponse:
    try:
        services.conversation_update(conversation=conversation, actor=request.user, changes=changes)
    except services.ConversationConflict:
        # Reload the page so staff see what changed meanwhile before trying again.
        messages.error(request, "The ticket kept changing while it was saved; nothing was changed. Try again.")
        return redirect("dashboard:ticket", conversation_id=conversation.pk)
    messages.success(request, "Ticket updated.")
    return redirect("dashboard:ticket", conversation_id=conversation.pk)


def ticket_context(conversation: Conversation, failed: dict[str, Any], *, viewer: Any) -> dict[str, Any]:
    """The ticket page: its turns, history and escalations, and the action forms (a failed one as posted)."""
    turns = list(selectors.message_list(conversation=conversation))
    events = list(selectors.event_list(conversation=conversation))
    escalations = selectors.escalation_list(conversation=conversation, events=events, turns=turns)
    return {
        "conversation": conversation,
        "turns": [turn(message) for message in turns],
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
        # Only a verified customer's history: an unverified user_id could be anyone's.
        "earlier": selectors.customer_history(user_id=conversation.user_id, exclude_pk=conversation.pk, viewer=viewer)
        if conversation.identity_verified
        else None,
        **_composer_context(conversation, turns, failed),
    }


def _composer_context(conversation: Conversation, turns: list[Message], failed: dict[str, Any]) -> dict[str, Any]:
    """The reply composer, its canned replies, who answers now, and what static/dashboard/ticket.js polls."""
    return {
        "reply_form": failed.get("reply") or ReplyForm(),
        "canned_replies": list(selectors.canned_reply_list_active()),
        "handled_by": getattr(conversation, "handled_by", "bot"),
        "last_message_id": str(turns[-1].pk) if turns else "",
        "messages_url": f"/api/support/conversations/{conversation.pk}/messages",
        "turns_url": reverse("dashboard:ticket_turns", kwargs={"conversation_id": conversation.pk}),
    }


# --- Analytics -------------------------------------------------------------------------------
@require_GET
@staff_required
def analytics(request: HttpRequest) -> HttpResponse:
    form = AnalyticsWindowForm(request.GET)
    if not form.is_valid():
        return render(request, "dashboard/analytics.html", {"form": form, "data": None}, status=400)
    window = form.window()
    venue = form.venue()
    data = selectors.analytics_summary(
        date_from=window.date_from,
        date_to=window.date_to,
        business_id=venue["business_id"],
        audience=venue["audience"],
        user=request.user,
    )
    selected_days = None if (request.GET.get("date_from") or request.GET.get("date_to")) else window.days
    context = {
        "form": form,
        "data": data,
        "selected_days": selected_days,
        "windows": [7, 30, 90],
        # The 7/30/90-day links keep the business and audience chosen.
        "venue_query": urlencode({k: v for k, v in venue.items() if v}),
        **analytics_figures(data),
        "budget_warning": budget.budget_warning(),
    }
    return render(request, "dashboard/analytics.html", context)
