"""Conversations (tickets): one by id, lists under the dashboard's and the API's filters, their history."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db.models import Case, DateTimeField, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from support import db
from support.models import (
    QUEUE_STATUSES,
    Conversation,
    EscalationReason,
    EventField,
    Message,
    Role,
    Status,
    TicketEvent,
    TicketNote,
)
from support.selectors.dates import utc_midnight
from support.selectors.messages import conversation_ids_with, usage_model_filter, users_by_pk
from support.selectors.scope import conversation_scope


def conversation_pk(raw: object) -> Any:
    """The primary key value `raw` spells, or None when it cannot be one (wrong shape for this database).

    Only the canonical spelling the API hands out is accepted: int() would also read " 1", "01" or
    U+0661 (Arabic-Indic one) as 1, and each spelling would get its own per-conversation rate limit.
    """
    try:
        value = Conversation._meta.pk.to_python(raw)
    except (ValidationError, ValueError, TypeError):
        return None
    if value is None or str(value) != str(raw):
        return None
    return value


def conversation_get(*, conversation_id: object, with_assignee: bool = True, user: Any = None) -> Conversation | None:
    """The conversation with this id (its assignee joined unless `with_assignee` is False: the widget's
    poll, whose unchanged answer needs only assigned_to_id), or None for an unknown or malformed id.

    With `user` (staff), also None for a conversation of a business the user may not see (StaffScope)."""
    pk = conversation_pk(conversation_id)
    if pk is None:
        return None
    if not with_assignee and user is None:
        return cast(Conversation | None, db.row_by_pk(Conversation, pk))  # the widget's, on every request
    conversations = Conversation.objects.select_related("assigned_to") if with_assignee else Conversation.objects
    found = conversations.filter(pk=pk)
    if user is not None:
        found = conversation_scope(found, user=user)
    # Unordered, not first(): an ORDER BY means nothing for one primary key and costs a compile on every
    # widget write.
    return next(iter(found.order_by()[:1]), None)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def conversation_token_matches(*, conversation: Conversation, token: str) -> bool:
    return bool(token) and hmac.compare_digest(conversation.token_hash, token_hash(token))


def event_list(*, conversation: Conversation) -> QuerySet[TicketEvent]:
    return TicketEvent.objects.filter(conversation=conversation).select_related("actor").order_by("created_at", "pk")


def ticket_note_list(*, conversation: Conversation) -> QuerySet[TicketNote]:
    return TicketNote.objects.filter(conversation=conversation).order_by("created_at", "pk")


@dataclass(frozen=True)
class Escalation:
    """One time the ticket was flagged for a person: when, why, by whom, and on which question."""

    at: datetime
    reason: str
    label: str
    actor_label: str
    question: str  # the customer's last message before it
    detail: str = ""  # the bot's own words (escalate_to_human); never verified


def escalation_list(*, conversation: Conversation, events: list[TicketEvent], turns: list[Message]) -> list[Escalation]:
    """Every escalation of a ticket, newest first, from its history (already read: no query).

    conversation_escalate writes an escalation-reason event on every escalation and, when the bot gave
    one, its note right after; a ticket from before that has its latest note on the conversation only.
    """
    labels = dict(EscalationReason.choices)
    found: list[dict[str, Any]] = []
    for event in events:
        if event.field == EventField.ESCALATION_REASON and event.new_value:
            found.append({"event": event, "detail": ""})
        elif event.field == EventField.ESCALATION_DETAIL and found:
            found[-1]["detail"] = event.new_value
    if found and not any(item["detail"] for item in found) and conversation.escalation_detail:
        found[-1]["detail"] = conversation.escalation_detail
    customer = [turn for turn in turns if turn.role == Role.USER]
    escalations = []
    for item in reversed(found):
        event = item["event"]
        asked = [turn.content for turn in customer if turn.created_at <= event.created_at]
        escalations.append(
            Escalation(
                at=event.created_at,
                reason=event.new_value,
                label=labels.get(event.new_value, event.new_value),
                actor_label=event.actor_label,
                question=asked[-1] if asked else "",
                detail=item["detail"],
            )
        )
    return escalations


@dataclass
class ConversationFilters:
    status: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    escalated: bool | None = None
    escalation_reason: str = ""
    assigned_to: Any = None
    unassigned: bool = False
    created_from: date | None = None
    created_to: date | None = None
    q: str = ""
    model: str = ""
    #: "up", "down", or "rated" (either); drills CSAT down to its conversations.
    rating: str = ""
    question: str = ""  # exact question_key (the normalised first message)
    #: A MessageOrigin: conversations with at least one turn of that origin (e.g. reported by the widget).
    origin: str = ""
    closed_after_escalation: bool = False
    #: "on_time", "late" or "responded": drills the first-response figures down (see first_response_q).
    first_response: str = ""
    #: "due": tickets still waiting for a person's first reply first, soonest due first (the queue's order).
    order: str = ""
    #: issue 15: one venue (Conversation.business_id) and one audience (diner or owner).
    business_id: str = ""
    audience: str = ""
    #: Conversations that gave no business (or no audience): the drill-down of the "(no business)" rows.
    no_business: bool = False
    no_audience: bool = False
    #: Issue 14: conversations with at least one ungrounded reply (Message.is_ungrounded).
    ungrounded: bool = False
    #: Outcomes (support.outcomes), any of: drills the resolution and cost-per-outcome figures down.
    outcome: list[str] = field(default_factory=list)


#: ConversationFilters.first_response values.
FIRST_RESPONSE_CHOICES = (
    ("on_time", "Answered within target"),
    ("late", "Answered late or overdue"),
    ("responded", "Answered by a person"),
)


def awaiting_first_response_q() -> Q:
    """Escalated tickets no person has answered yet (since the latest escalation)."""
    return Q(first_response_due_at__isnull=False, first_human_response_at__isnull=True)


def first_response_q(kind: str, *, now: datetime) -> Q:
    """The escalated conversations behind each first-response figure (analytics counts the same sets).

    on_time: answered by the due time. late: answered after it, or still unanswered past it. A ticket
    still inside its target with no answer is in neither: it is not judged yet. Each starts with
    `escalated=True`, so with a created_at window the conv_escalated_created_idx index serves it.
    """
    answered = Q(escalated=True, first_response_due_at__isnull=False, first_human_response_at__isnull=False)
    if kind == "responded":
        return answered
    on_time = answered & Q(first_human_response_at__lte=F("first_response_due_at"))
    if kind == "on_time":
        return on_time
    if kind == "late":
        return (answered & Q(first_human_response_at__gt=F("first_response_due_at"))) | (
            Q(escalated=True) & awaiting_first_response_q() & Q(first_response_due_at__lt=now)
        )
    raise ValueError(f"unknown first-response filter {kind!r}")


def conversation_list(
    *,
    filters: ConversationFilters | None = None,
    oldest_first: bool = False,
    user: Any = None,
    with_assignee: bool = True,
) -> QuerySet[Conversation]:
    """Conversations matching every filter given, newest first (or oldest first), their assignee joined
    unless `with_assignee` is False (then see conversation_assignees_attach).

    With `user`, only the businesses that staff user may see (selectors.conversation_scope)."""
    filters = filters or ConversationFilters()
    qs = Conversation.objects.select_related("assigned_to") if with_assignee else Conversation.objects.all()
    if user is not None:
        qs = conversation_scope(qs, user=user)
    qs = _by_fields(qs, filters)
    qs = _by_dates(qs, filters)
    qs = _by_outcome(qs, filters)
    qs = _by_turns(qs, filters)
    if filters.q:
        qs = qs.filter(conversation_search(filters.q))
    if filters.order == "due":
        return _due_first(qs)
    order = ("created_at", "pk") if oldest_first else ("-created_at", "-pk")
    return qs.order_by(*order)


def _due_first(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Tickets waiting for a person's first reply, soonest due first; then the rest, newest first."""
    waiting = When(awaiting_first_response_q(), then=Value(0))
    due = When(awaiting_first_response_q(), then=F("first_response_due_at"))
    # Expressions in order_by, not annotations: nothing extra is selected (and django-mongodb-backend
    # mixed up two annotated Case columns when reading rows back).
    return qs.order_by(
        Case(waiting, default=Value(1), output_field=IntegerField()).asc(),
        Case(due, default=Value(None), output_field=DateTimeField()).asc(),
        "-created_at",
        "-pk",
    )


def _by_fields(qs: QuerySet[Conversation], filters: ConversationFilters) -> QuerySet[Conversation]:
    if filters.status:
        qs = qs.filter(status__in=filters.status)
    if filters.source:
        qs = qs.filter(source__in=filters.source)
    if filters.escalated is not None:
        qs = qs.filter(escalated=filters.escalated)
    if filters.escalation_reason:
        qs = qs.filter(escalation_reason=filters.escalation_reason)
    if filters.assigned_to is not None:
        qs = qs.filter(assigned_to=filters.assigned_to)
    if filters.unassigned:
        qs = qs.filter(assigned_to__isnull=True)
    return _by_venue(qs, filters)


def _by_venue(qs: QuerySet[Conversation], filters: ConversationFilters) -> QuerySet[Conversation]:
    """One business and audience; or the conversations that gave none (no_business, no_audience)."""
    if filters.business_id:
        qs = qs.filter(business_id=filters.business_id)
    if filters.audience:
        qs = qs.filter(audience=filters.audience)
    if filters.no_business:
        qs = qs.filter(business_id="")
    if filters.no_audience:
        qs = qs.filter(audience="")
    return qs


def _by_dates(qs: QuerySet[Conversation], filters: ConversationFilters) -> QuerySet[Conversation]:
    if filters.created_from:
        qs = qs.filter(created_at__gte=utc_midnight(filters.created_from))
    if filters.created_to:
        qs = qs.filter(created_at__lt=utc_midnight(filters.created_to + timedelta(days=1)))
    return qs


def _by_outcome(qs: QuerySet[Conversation], filters: ConversationFilters) -> QuerySet[Conversation]:
    if filters.rating == "rated":
        qs = qs.exclude(rating="")
    elif filters.rating:
        qs = qs.filter(rating=filters.rating)
    if filters.question:
        qs = qs.filter(question_key=filters.question)
    if filters.first_response:
        qs = qs.filter(first_response_q(filters.first_response, now=timezone.now()))
    if filters.outcome:
        qs = qs.filter(outcome__in=filters.outcome)
    if filters.closed_after_escalation:
        # The conversations behind the escalation-to-close median (see rollups.close_bucket).
        qs = qs.filter(status=Status.CLOSED, escalated=True, escalated_at__isnull=False, closed_at__isnull=False)
    return qs


def _by_turns(qs: QuerySet[Conversation], filters: ConversationFilters) -> QuerySet[Conversation]:
    """Conversations with a turn of the model or origin asked for."""
    if filters.model:
        qs = qs.filter(pk__in=conversation_ids_with(_in_window(usage_model_filter(filters.model), filters)))
    if filters.origin:
        qs = qs.filter(pk__in=conversation_ids_with(_in_window(Q(origin=filters.origin), filters)))
    if filters.ungrounded:
        qs = qs.filter(pk__in=conversation_ids_with(_in_window(Q(is_ungrounded=True), filters)))
    return qs


def _in_window(turns: Q, filters: ConversationFilters) -> Q:
    if filters.created_from:
        # A conversation's turns come after it starts: this keeps the id list to the window.
        turns &= Q(created_at__gte=utc_midnight(filters.created_from))
    return turns


def conversation_search(term: str) -> Q:
    """Conversations whose summary, contact email, page URL or any message contains `term` (any case).

    One filter on conversations, shared by the dashboard's search box and the admin's, so both find the
    same tickets; message content is matched first as a list of conversation ids (see below).
    """
    matching = conversation_ids_with(Q(content__icontains=term))
    return (
        Q(summary__icontains=term) | Q(contact_email__icontains=term) | Q(page_url__icontains=term) | Q(pk__in=matching)
    )


def ticket_list(
    *,
    filters: ConversationFilters | None = None,
    oldest_first: bool = False,
    user: Any = None,
    with_assignee: bool = True,
) -> QuerySet:
    """The conversations waiting for a person (QUEUE_STATUSES) under `filters`; see conversation_list.

    The API's page passes with_assignee=False and reads the page's assignees in one query by id: on MongoDB
    select_related is a $lookup over every matching ticket, sorted and skipped with it, not just the page."""
    filters = filters or ConversationFilters()
    if not filters.status:
        filters.status = list(QUEUE_STATUSES)
    else:
        filters.status = [s for s in filters.status if s in QUEUE_STATUSES]
    return conversation_list(filters=filters, oldest_first=oldest_first, user=user, with_assignee=with_assignee)


def conversation_assignees_attach(conversations: list[Conversation]) -> None:
    """Give each conversation its assignee (read in one query by id), as select_related would have."""
    assignees = users_by_pk(conversation.assigned_to_id for conversation in conversations)
    for conversation in conversations:
        assignee = assignees.get(conversation.assigned_to_id)
        if assignee is not None:
            conversation.assigned_to = assignee
