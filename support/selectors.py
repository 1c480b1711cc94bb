"""Reads. Each returns a queryset (or plain data) with the joins its callers need."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from support import rollups
from support.models import (
    QUEUE_STATUSES,
    Conversation,
    DailyCloseRollup,
    DailyConversationRollup,
    DailyQuestionRollup,
    DailySpend,
    DailyUsageRollup,
    EscalationReason,
    EventField,
    IdempotencyRecord,
    KnowledgeArticle,
    Message,
    MessageOrigin,
    ModelPrice,
    Rating,
    Role,
    Status,
    TicketEvent,
    TicketNote,
)
from support.pricing import micros_to_usd, price_usable

logger = logging.getLogger(__name__)


def parse_pk(model: type, raw: object) -> Any:
    """The primary key value for `raw`, or Http404 when it cannot be one (wrong shape for this database).

    Only the canonical spelling the API hands out is accepted: int() would also read " 1", "01" or
    U+0661 (Arabic-Indic one) as 1, and each spelling would get its own per-conversation rate limit.
    """
    try:
        value = model._meta.pk.to_python(raw)
    except (ValidationError, ValueError, TypeError):
        raise Http404(f"No {model._meta.verbose_name} matches the given id.") from None
    if value is None or str(value) != str(raw):
        raise Http404(f"No {model._meta.verbose_name} matches the given id.")
    return value


def usage_model_filter(key: str) -> Q:
    """The turns counted in usage row `key` (rollups.usage_model_key), as a message filter."""
    if key == rollups.KNOWLEDGE_BASE:
        return Q(model="", role=Role.ASSISTANT)
    if not key:
        return Q(model="") & ~Q(role=Role.ASSISTANT)
    return Q(model=key)


def message_usage_sums() -> dict[str, Any]:
    """Aggregates over messages: turns (n), tokens by kind (inp, out, cr, cw) and cost in micro-USD.

    Shared by the cost report, the rollup rebuild and the counter repair so they always agree.
    """
    return {
        "n": Count("pk"),
        "inp": Sum("input_tokens"),
        "out": Sum("output_tokens"),
        "cr": Sum("cache_read_tokens"),
        "cw": Sum("cache_write_tokens"),
        "cost": Sum("cost_micros"),
    }


def conversation_get(*, conversation_id: object) -> Conversation:
    pk = parse_pk(Conversation, conversation_id)
    try:
        return Conversation.objects.select_related("assigned_to").get(pk=pk)
    except Conversation.DoesNotExist:
        raise Http404("No conversation matches the given id.") from None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def conversation_token_matches(*, conversation: Conversation, token: str) -> bool:
    return bool(token) and hmac.compare_digest(conversation.token_hash, token_hash(token))


def staff_user_get(*, user_id: object) -> Any:
    User = get_user_model()
    try:
        pk = User._meta.pk.to_python(user_id)
        return User.objects.get(pk=pk, is_staff=True, is_active=True)
    except (ValidationError, ValueError, TypeError, User.DoesNotExist):
        return None


def staff_user_list() -> QuerySet:
    return get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")


def model_price_in_effect(*, model: str, at: datetime) -> ModelPrice | None:
    return ModelPrice.objects.filter(model=model, effective_from__lte=at).order_by("-effective_from").first()


def model_is_known(*, model: str) -> bool:
    """Whether `model` has a price row or any logged turns (read from the small usage rollups, which
    name every model a turn was logged with, rather than scanning messages)."""
    return ModelPrice.objects.filter(model=model).exists() or DailyUsageRollup.objects.filter(model=model).exists()


def models_prices_in_effect(*, models: set[str], at: datetime) -> dict[str, ModelPrice]:
    """The row in effect at `at` for each of `models` that has one, in one query."""
    in_effect: dict[str, ModelPrice] = {}
    rows = ModelPrice.objects.filter(model__in=sorted(models), effective_from__lte=at).order_by(
        "model", "-effective_from"
    )
    for row in rows:
        if price_usable(row):
            in_effect.setdefault(row.model, row)
        else:
            logger.error("price row %s has a negative price; using the row in effect before it", row.pk)
    return in_effect


def assistant_message_get(*, conversation: Conversation, message_id: object) -> Message | None:
    """One assistant reply of `conversation`, or None (bad id, other conversation, or a user turn)."""
    try:
        pk = Message._meta.pk.to_python(message_id)
    except (ValidationError, ValueError, TypeError):
        return None
    return Message.objects.filter(pk=pk, conversation=conversation, role=Role.ASSISTANT).first()


def widget_config() -> dict[str, Any]:
    """What the embedded widget shows before the script tag's data-* attributes override it."""
    return {
        "title": settings.SUPPORT_WIDGET_TITLE,
        "greeting": settings.SUPPORT_WIDGET_GREETING,
        "quick_questions": list(settings.SUPPORT_WIDGET_QUICK_QUESTIONS),
        "primary_colour": settings.SUPPORT_WIDGET_PRIMARY_COLOUR,
        "position": settings.SUPPORT_WIDGET_POSITION,
        "support_email": settings.SUPPORT_EMAIL,
        "max_message_chars": settings.SUPPORT_MAX_MESSAGE_CHARS,
    }


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return Message.objects.filter(conversation=conversation).order_by("created_at", "pk")


def message_recent(*, conversation: Conversation, limit: int) -> list[Message]:
    """The last `limit` turns of a conversation, oldest first (one query, newest `limit` rows)."""
    newest_first = Message.objects.filter(conversation=conversation).order_by("-created_at", "-pk")[:limit]
    return list(reversed(list(newest_first)))


def message_reply_to(*, message: Message) -> Message | None:
    """The bot's reply to a customer's turn: the conversation's next message, when the bot wrote it."""
    following = (
        Message.objects.filter(conversation_id=message.conversation_id, created_at__gte=message.created_at)
        .exclude(pk=message.pk)
        .order_by("created_at", "pk")
        .first()
    )
    return following if following is not None and following.role == Role.ASSISTANT else None


def messages_by_conversation(*, conversation_ids: list[Any]) -> dict[Any, list[Message]]:
    """All messages of many conversations in one query, grouped in order (no prefetch_related on MongoDB)."""
    grouped: dict[Any, list[Message]] = {pk: [] for pk in conversation_ids}
    if not conversation_ids:
        return grouped
    for message in Message.objects.filter(conversation_id__in=conversation_ids).order_by("created_at", "pk"):
        grouped[message.conversation_id].append(message)
    return grouped


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


def conversation_list(*, filters: ConversationFilters | None = None, oldest_first: bool = False) -> QuerySet:
    filters = filters or ConversationFilters()
    qs = Conversation.objects.select_related("assigned_to")
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
    if filters.created_from:
        qs = qs.filter(created_at__gte=utc_midnight(filters.created_from))
    if filters.created_to:
        qs = qs.filter(created_at__lt=utc_midnight(filters.created_to + timedelta(days=1)))
    if filters.rating == "rated":
        qs = qs.exclude(rating="")
    elif filters.rating:
        qs = qs.filter(rating=filters.rating)
    if filters.question:
        qs = qs.filter(question_key=filters.question)
    if filters.closed_after_escalation:
        # The conversations behind the escalation-to-close median (see rollups.close_bucket).
        qs = qs.filter(status=Status.CLOSED, escalated=True, escalated_at__isnull=False, closed_at__isnull=False)
    if filters.model:
        turns = usage_model_filter(filters.model)
        if filters.created_from:
            # A conversation's turns come after it starts: this keeps the id list to the window.
            turns &= Q(created_at__gte=utc_midnight(filters.created_from))
        qs = qs.filter(pk__in=_conversation_ids_with(turns))
    if filters.origin:
        turns = Q(origin=filters.origin)
        if filters.created_from:
            turns &= Q(created_at__gte=utc_midnight(filters.created_from))
        qs = qs.filter(pk__in=_conversation_ids_with(turns))
    if filters.q:
        qs = qs.filter(conversation_search(filters.q))
    order = ("created_at", "pk") if oldest_first else ("-created_at", "-pk")
    return qs.order_by(*order)


def conversation_search(term: str) -> Q:
    """Conversations whose summary, contact email, page URL or any message contains `term` (any case).

    One filter on conversations, shared by the dashboard's search box and the admin's, so both find the
    same tickets; message content is matched first as a list of conversation ids (see below).
    """
    matching = _conversation_ids_with(Q(content__icontains=term))
    return (
        Q(summary__icontains=term) | Q(contact_email__icontains=term) | Q(page_url__icontains=term) | Q(pk__in=matching)
    )


def _conversation_ids_with(message_filter: Q) -> list[Any]:
    # Materialised rather than a subquery: the MongoDB backend cannot nest a query in `__in`.
    return list(Message.objects.filter(message_filter).values_list("conversation_id", flat=True).distinct())


def ticket_list(*, filters: ConversationFilters | None = None, oldest_first: bool = False) -> QuerySet:
    filters = filters or ConversationFilters()
    if not filters.status:
        filters.status = list(QUEUE_STATUSES)
    else:
        filters.status = [s for s in filters.status if s in QUEUE_STATUSES]
    return conversation_list(filters=filters, oldest_first=oldest_first)


def utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


@dataclass(frozen=True)
class Window:
    """Whole UTC days, both ends included."""

    date_from: date
    date_to: date

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def each_day(self) -> list[date]:
        return [self.date_from + timedelta(days=i) for i in range(self.days)]


#: The longest explicit date range analytics accept, as `days` allows at most 365.
MAX_WINDOW_DAYS = 366


def window_error(*, date_from: date | None, date_to: date | None, today: date | None = None) -> tuple[str, str] | None:
    """(field, message) when a date range cannot be a window, else None.

    A range with only date_from ends today, so it is held to the same limit as a full one: without
    that, date_from=2000-01-01 asked for ten thousand days, and one after today for none at all.
    """
    if not date_from:
        return None
    end = date_to or today or timezone.now().date()
    if date_from > end:
        return ("date_from", "Must not be after date_to." if date_to else "Must not be after today.")
    if (end - date_from).days >= MAX_WINDOW_DAYS:
        return ("date_to" if date_to else "date_from", f"A range covers at most {MAX_WINDOW_DAYS} days.")
    return None


def window_for(
    *, days: int | None = None, date_from: date | None = None, date_to: date | None = None, today: date | None = None
) -> Window:
    """An explicit date range wins; otherwise the last `days` days (default 30), today included."""
    today = today or timezone.now().date()
    if date_from or date_to:
        end = date_to or today
        start = date_from or end - timedelta(days=(days or 30) - 1)
        if start > end:
            raise ValueError("date_from must not be after date_to")
        return Window(start, end)
    return Window(today - timedelta(days=(days or 30) - 1), today)


def analytics_summary(
    *,
    days: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Analytics of the conversations started in a window, read from the daily rollups only.

    Cost is O(days in the window) (times the few sources, statuses and models), never O(messages).
    Every figure counts the conversations started in the window and everything logged in them, so
    the ticket list filtered the same way (see drill-down links) adds up to the same numbers.
    """
    window = window_for(days=days, date_from=date_from, date_to=date_to, today=today)
    in_window = {"day__gte": window.date_from, "day__lte": window.date_to}
    states = DailyConversationRollup.objects.filter(**in_window)
    usage = DailyUsageRollup.objects.filter(**in_window)

    per_day = {
        row["day"]: row
        for row in states.values("day").annotate(
            n=Sum("conversations"),
            esc=Sum("conversations", filter=Q(escalated=True)),
        )
    }
    cost_per_day = {
        row["day"]: row
        for row in usage.values("day").annotate(
            cost=Sum("cost_micros"), messages=Sum("messages"), **{name: Sum(name) for name in CLIENT_COLUMNS}
        )
    }
    by_status: dict[str, int] = {}
    by_rating: dict[str, int] = {}
    # One query serves both the status breakdown and CSAT.
    for row in states.values("status", "rating").annotate(n=Sum("conversations")):
        by_status[row["status"]] = by_status.get(row["status"], 0) + (row["n"] or 0)
        by_rating[row["rating"]] = by_rating.get(row["rating"], 0) + (row["n"] or 0)
    total = sum(by_status.values())
    auto = by_status.get(Status.AUTO_RESOLVED, 0)
    escalated = sum((row["esc"] or 0) for row in per_day.values())
    message_total = sum((row["messages"] or 0) for row in cost_per_day.values())
    cost = sum((row["cost"] or 0) for row in cost_per_day.values())

    top_questions = _top_questions(window)

    conversations_by_day = []
    cost_by_day = []
    escalation_rate_by_day = []
    for day in window.each_day():
        n = (per_day.get(day) or {}).get("n") or 0
        esc = (per_day.get(day) or {}).get("esc") or 0
        day_cost = (cost_per_day.get(day) or {}).get("cost") or 0
        conversations_by_day.append({"date": day.isoformat(), "count": n})
        cost_by_day.append({"date": day.isoformat(), "cost_micros": day_cost, "cost_usd": micros_to_usd(day_cost)})
        escalation_rate_by_day.append(
            {"date": day.isoformat(), "conversations": n, "escalated": esc, "escalated_pct": _pct(esc, n)}
        )

    source_cost = {row["source"]: row["cost"] or 0 for row in usage.values("source").annotate(cost=Sum("cost_micros"))}
    source_counts = {
        row["source"]: row
        for row in states.values("source").annotate(
            n=Sum("conversations"), esc=Sum("conversations", filter=Q(escalated=True))
        )
    }
    by_source = [
        {
            "source": source,
            "conversations": (source_counts.get(source) or {}).get("n") or 0,
            "escalated": (source_counts.get(source) or {}).get("esc") or 0,
            "cost_micros": source_cost.get(source, 0),
            "cost_usd": micros_to_usd(source_cost.get(source, 0)),
        }
        for source in sorted(set(source_counts) | set(source_cost))
    ]
    by_source = [row for row in by_source if row["conversations"] or row["cost_micros"]]

    by_model = [
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

    reasons = dict(EscalationReason.choices)
    escalations_by_reason = [
        {"reason": row["escalation_reason"], "label": reasons.get(row["escalation_reason"], "—"), "count": row["n"]}
        for row in states.filter(escalated=True)
        .values("escalation_reason")
        .annotate(n=Sum("conversations"))
        .filter(n__gt=0)
        .order_by("-n", "escalation_reason")
    ]

    buckets = {
        row["close_bucket"]: row["n"] or 0
        for row in DailyCloseRollup.objects.filter(**in_window).values("close_bucket").annotate(n=Sum("conversations"))
    }
    median = rollups.median_from_buckets(buckets)

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
        "top_questions": top_questions,
        "conversations_by_day": conversations_by_day,
        "cost_by_day": cost_by_day,
        "escalation_rate_by_day": escalation_rate_by_day,
        "by_status": [{"status": value, "count": by_status.get(value, 0)} for value, _ in Status.choices],
        "by_source": by_source,
        "by_model": by_model,
        "escalations_by_reason": escalations_by_reason,
        "closed_after_escalation": sum(n for n in buckets.values() if n > 0),
        "median_escalation_to_close_seconds": None if median is None else round(median),
        **_csat(by_rating),
        **_client_reported(cost_per_day.values()),
    }


def _client_reported(per_day: Any) -> dict[str, Any]:
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


def _top_questions(window: Window, *, limit: int = 10) -> list[dict[str, Any]]:
    """The window's most asked first questions, in O(days) whatever the number of distinct questions.

    Candidates are each day's TOP_QUESTION_CANDIDATES_PER_DAY most asked (one UNION query over an
    index on (day, -conversations)); their window totals are then summed exactly. A question that is
    never near the top on any day could in theory be missed; counts shown are always exact.
    """
    candidates = _question_candidates(window.each_day(), per_day=TOP_QUESTION_CANDIDATES_PER_DAY)
    if not candidates:
        return []
    return [
        {"question": row["question_key"], "count": row["n"]}
        for row in DailyQuestionRollup.objects.filter(
            day__gte=window.date_from, day__lte=window.date_to, question_key__in=sorted(candidates)
        )
        .values("question_key")
        .annotate(n=Sum("conversations"))
        .filter(n__gt=0)
        .order_by("-n", "question_key")[:limit]
    ]


#: Days per UNION query: SQLite refuses a compound SELECT of more than 500 terms, so a long window
#: (an "all time" report, or a hostile date_from=2000-01-01) is asked for in several round trips.
QUESTION_CANDIDATE_DAYS_PER_QUERY = 200


def _question_candidates(days: list[date], *, per_day: int) -> set[str]:
    """Each day's `per_day` most asked question keys, in one round trip per 200 days."""
    candidates: set[str] = set()
    for start in range(0, len(days), QUESTION_CANDIDATE_DAYS_PER_QUERY):
        candidates |= _question_candidates_of(days[start : start + QUESTION_CANDIDATE_DAYS_PER_QUERY], per_day=per_day)
    return candidates


def _question_candidates_of(days: list[date], *, per_day: int) -> set[str]:
    if not days:
        return set()
    if connection.features.supports_slicing_ordering_in_compound:  # MongoDB ($unionWith), PostgreSQL
        top = (
            DailyQuestionRollup.objects.filter(conversations__gt=0)
            .order_by("-conversations")
            .values_list("question_key", flat=True)
        )
        parts = [top.filter(day=day)[:per_day] for day in days]
        return set(parts[0].union(*parts[1:], all=True))
    # SQLite allows LIMIT in a compound member only inside a subquery; the SQL is written out once
    # rather than compiled per day (compiling 90 querysets would cost more than running them).
    table = connection.ops.quote_name(DailyQuestionRollup._meta.db_table)
    member = (
        f"SELECT * FROM (SELECT question_key FROM {table} WHERE day = %s AND conversations > 0 "
        f"ORDER BY conversations DESC LIMIT {int(per_day)})"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            " UNION ALL ".join([member] * len(days)), [connection.ops.adapt_datefield_value(d) for d in days]
        )
        return {row[0] for row in cursor.fetchall()}


# --- Cost report (manage.py cost_report) -----------------------------------------------------
COST_REPORT_GROUPS = ("day", "model", "source", "status")
_TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
#: The figures of a usage row, in report order: cost_report's columns and DailyUsageRollup's counters.
USAGE_COLUMNS = ("conversations", "messages", *_TOKEN_KINDS, "cost_micros")
#: DailyUsageRollup's counters of the widget-reported share (MessageOrigin.CLIENT), in the same order.
CLIENT_COLUMNS = tuple(f"client_{name}" for name in USAGE_COLUMNS)
#: cost_report's extra columns: the widget-reported share of each row (already in its totals).
CLIENT_REPORT_COLUMNS = ("client_messages", "client_cost_micros")


@dataclass
class CostRow:
    key: str
    conversations: int = 0
    messages: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int = 0
    client_messages: int = 0
    client_cost_micros: int = 0

    def add(self, *, conversations: int, messages: int, tokens: tuple[int, ...], cost_micros: int) -> None:
        self.conversations += conversations
        self.messages += messages
        for name, value in zip(_TOKEN_KINDS, tokens, strict=True):
            setattr(self, name, getattr(self, name) + (value or 0))
        self.cost_micros += cost_micros or 0

    @property
    def cost_usd(self) -> float:
        return micros_to_usd(self.cost_micros)


@dataclass
class CostReport:
    window: Window
    by: str
    rows: list[CostRow]
    total: CostRow


def cost_report(
    *, window: Window, by: str, batch_size: int = 2000, progress: Callable[[int, int], None] | None = None
) -> CostReport:
    """Conversations, turns, tokens by kind and cost of the conversations started in `window`, grouped.

    Read from the conversations and messages themselves (not the rollups), in primary-key batches, so
    it doubles as an independent check of the dashboard's figures. `progress(done, total)` is called
    after each batch of conversations.
    """
    if by not in COST_REPORT_GROUPS:
        raise ValueError(f"by must be one of {', '.join(COST_REPORT_GROUPS)}")
    conversations = Conversation.objects.filter(
        created_at__gte=utc_midnight(window.date_from), created_at__lt=utc_midnight(window.date_to + timedelta(days=1))
    )
    total_count = conversations.count()
    groups: dict[str, CostRow] = {}
    if by == "day":
        groups = {day.isoformat(): CostRow(day.isoformat()) for day in window.each_day()}
    grand = CostRow("total")
    done = 0
    last = None
    fields = ("pk", "created_at", "source", "status", "message_count", *_CONVERSATION_TOKENS, "cost_micros")
    while True:
        page = conversations if last is None else conversations.filter(pk__gt=last)
        rows = list(page.order_by("pk").values_list(*fields)[:batch_size])
        if not rows:
            break
        last = rows[-1][0]
        for _pk, created_at, source, status, message_count, *tokens, cost in rows:
            grand.add(conversations=1, messages=message_count, tokens=tuple(tokens), cost_micros=cost)
            if by == "model":
                continue
            key = {"day": rollups.utc_day(created_at).isoformat(), "source": source, "status": status}[by]
            groups.setdefault(key, CostRow(key)).add(
                conversations=1, messages=message_count, tokens=tuple(tokens), cost_micros=cost
            )
        _cost_report_client_share(rows, by=by, groups=groups, grand=grand)
        if by == "model":
            _cost_rows_by_model(groups, conversation_ids=[row[0] for row in rows])
        done += len(rows)
        if progress is not None:
            progress(done, total_count)
    return CostReport(window=window, by=by, rows=[groups[key] for key in sorted(groups)], total=grand)


#: cost_report's name for customer turns logged without a model (no Claude usage of their own).
NO_MODEL = "(customer turns, no model)"


def _cost_rows_by_model(groups: dict[str, CostRow], *, conversation_ids: list[Any]) -> None:
    """Add one batch of conversations' turns to the per-model rows (rollups.usage_model_key names them)."""
    per_model = (
        Message.objects.filter(conversation_id__in=conversation_ids)
        .values("conversation_id", "model", "role")
        .annotate(**message_usage_sums())
    )
    counted: set[tuple[Any, str]] = set()
    for row in per_model:
        key = rollups.usage_model_key(row["model"], row["role"]) or NO_MODEL
        first = (row["conversation_id"], key) not in counted
        counted.add((row["conversation_id"], key))
        groups.setdefault(key, CostRow(key)).add(
            conversations=int(first),
            messages=row["n"],
            tokens=(row["inp"], row["out"], row["cr"], row["cw"]),
            cost_micros=row["cost"],
        )


def _cost_report_client_share(
    rows: list[tuple[Any, ...]], *, by: str, groups: dict[str, CostRow], grand: CostRow
) -> None:
    """Add the widget-reported turns of one batch of conversations to their rows (one query)."""
    owners = {row[0]: row for row in rows}
    reported = (
        Message.objects.filter(conversation_id__in=list(owners), origin=MessageOrigin.CLIENT)
        .values("conversation_id", "model", "role")
        .annotate(n=Count("pk"), cost=Sum("cost_micros"))
    )
    for row in reported:
        _pk, created_at, source, status, *_rest = owners[row["conversation_id"]]
        key = {
            "day": rollups.utc_day(created_at).isoformat(),
            "source": source,
            "status": status,
            "model": rollups.usage_model_key(row["model"], row["role"]) or NO_MODEL,
        }[by]
        for target in (grand, groups.setdefault(key, CostRow(key))):
            target.client_messages += row["n"] or 0
            target.client_cost_micros += row["cost"] or 0


_CONVERSATION_TOKENS = (
    "total_input_tokens",
    "total_output_tokens",
    "total_cache_read_tokens",
    "total_cache_write_tokens",
)


# --- CSAT (widget thumbs up/down); kept apart from the rest of analytics_summary so it re-applies cleanly.
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


# --- Knowledge base --------------------------------------------------------------------------
def knowledge_article_list_active() -> QuerySet[KnowledgeArticle]:
    """Active articles in display order; the order is stable so the compiled prompt (and its cache) is too."""
    return KnowledgeArticle.objects.filter(active=True).order_by("order", "title", "pk")


def idempotency_record_get(*, conversation: Conversation, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(conversation=conversation, key=key).first()


# --- Daily budget ----------------------------------------------------------------------------
def daily_spend_today(*, now: datetime | None = None) -> DailySpend | None:
    """Today's (UTC) budget row: what the chat proxy spent and holds reserved; None before the first call."""
    day = (now or timezone.now()).date()
    return DailySpend.objects.filter(day=day).first()
