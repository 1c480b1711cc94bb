"""Reads. Each returns a queryset (or plain data) with the joins its callers need."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from support.models import (
    QUEUE_STATUSES,
    Conversation,
    KnowledgeArticle,
    Message,
    ModelPrice,
    Status,
    TicketEvent,
)
from support.pricing import micros_to_usd


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


def model_price_in_effect(*, model: str, at: datetime) -> ModelPrice | None:
    return ModelPrice.objects.filter(model=model, effective_from__lte=at).order_by("-effective_from").first()


def models_prices_in_effect(*, models: set[str], at: datetime) -> dict[str, ModelPrice]:
    """The row in effect at `at` for each of `models` that has one, in one query."""
    in_effect: dict[str, ModelPrice] = {}
    rows = ModelPrice.objects.filter(model__in=sorted(models), effective_from__lte=at).order_by(
        "model", "-effective_from"
    )
    for row in rows:
        in_effect.setdefault(row.model, row)
    return in_effect


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return Message.objects.filter(conversation=conversation).order_by("created_at", "pk")


def message_recent(*, conversation: Conversation, limit: int) -> list[Message]:
    """The last `limit` turns of a conversation, oldest first (one query, newest `limit` rows)."""
    newest_first = Message.objects.filter(conversation=conversation).order_by("-created_at", "-pk")[:limit]
    return list(reversed(list(newest_first)))


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
    if filters.model:
        qs = qs.filter(pk__in=_conversation_ids_with(Q(model=filters.model)))
    if filters.q:
        matching = _conversation_ids_with(Q(content__icontains=filters.q))
        qs = qs.filter(Q(summary__icontains=filters.q) | Q(pk__in=matching))
    order = ("created_at", "pk") if oldest_first else ("-created_at", "-pk")
    return qs.order_by(*order)


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


def analytics_summary(*, days: int, today: date | None = None) -> dict[str, Any]:
    """The seed's analytics for the last `days` days (today included), plus cost and breakdowns."""
    today = today or timezone.now().date()
    first_day = today - timedelta(days=days - 1)
    start = utc_midnight(first_day)
    end = utc_midnight(today + timedelta(days=1))

    conversations = Conversation.objects.filter(created_at__gte=start, created_at__lt=end)
    totals = conversations.aggregate(
        n=Count("pk"),
        auto=Count("pk", filter=Q(status=Status.AUTO_RESOLVED)),
        escalated=Count("pk", filter=Q(escalated=True)),
        cost=Sum("cost_micros"),
        messages=Sum("message_count"),
    )
    total = totals["n"] or 0
    auto = totals["auto"] or 0
    cost = totals["cost"] or 0
    message_total = totals["messages"] or 0

    top_questions = [
        {"question": row["question_key"], "count": row["count"]}
        for row in conversations.exclude(question_key="")
        .values("question_key")
        .annotate(count=Count("pk"))
        .order_by("-count", "question_key")[:10]
    ]

    per_day = {
        row["day"]: row["count"]
        for row in conversations.annotate(day=TruncDate("created_at")).values("day").annotate(count=Count("pk"))
    }
    by_day = [
        {"date": (first_day + timedelta(days=i)).isoformat(), "count": per_day.get(first_day + timedelta(days=i), 0)}
        for i in range(days)
    ]

    by_source = [
        {
            "source": row["source"],
            "conversations": row["n"],
            "escalated": row["esc"],
            "cost_micros": row["cost"] or 0,
            "cost_usd": micros_to_usd(row["cost"] or 0),
        }
        for row in conversations.values("source")
        .annotate(n=Count("pk"), esc=Count("pk", filter=Q(escalated=True)), cost=Sum("cost_micros"))
        .order_by("source")
    ]

    by_model = [
        {
            "model": row["model"],
            "messages": row["n"],
            "input_tokens": row["inp"] or 0,
            "output_tokens": row["out"] or 0,
            "cache_read_tokens": row["cr"] or 0,
            "cache_write_tokens": row["cw"] or 0,
            "cost_micros": row["cost"] or 0,
            "cost_usd": micros_to_usd(row["cost"] or 0),
        }
        for row in Message.objects.filter(created_at__gte=start, created_at__lt=end)
        .exclude(model="")
        .values("model")
        .annotate(
            n=Count("pk"),
            inp=Sum("input_tokens"),
            out=Sum("output_tokens"),
            cr=Sum("cache_read_tokens"),
            cw=Sum("cache_write_tokens"),
            cost=Sum("cost_micros"),
        )
        .order_by("model")
    ]

    return {
        "days": days,
        "date_from": first_day.isoformat(),
        "date_to": today.isoformat(),
        "total_conversations": total,
        "total_messages": message_total,
        "auto_resolved_pct": _pct(auto, total),
        "escalated_pct": _pct(totals["escalated"] or 0, total),
        "avg_messages_per_conversation": round(message_total / total, 2) if total else 0.0,
        "total_cost_micros": cost,
        "total_cost_usd": micros_to_usd(cost),
        "cost_per_conversation_usd": micros_to_usd(round(cost / total)) if total else None,
        "cost_per_auto_resolved_usd": micros_to_usd(round(cost / auto)) if auto else None,
        "top_questions": top_questions,
        "conversations_by_day": by_day,
        "by_source": by_source,
        "by_model": by_model,
    }


# --- Knowledge base --------------------------------------------------------------------------
def knowledge_article_list_active() -> QuerySet[KnowledgeArticle]:
    """Active articles in display order; the order is stable so the compiled prompt (and its cache) is too."""
    return KnowledgeArticle.objects.filter(active=True).order_by("order", "title", "pk")


# --- Daily budget ----------------------------------------------------------------------------
#: Seconds a computed daily spend is reused; new turns add their cost to the cached figure meanwhile.
SPEND_CACHE_SECONDS = 30


def spend_cache_key(day: date) -> str:
    return f"support:spend:{day.isoformat()}"


def spend_today_micros(*, now: datetime | None = None) -> int:
    """Claude spend since UTC midnight in micro-USD: one aggregate query, reused briefly from the shared cache."""
    now = now or timezone.now()
    key = spend_cache_key(now.date())
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - a broken cache must not stop the bot; the database has the answer
        cached = None
    if cached is not None:
        return int(cached)
    total = Message.objects.filter(created_at__gte=utc_midnight(now.date())).aggregate(total=Sum("cost_micros"))
    spent = int(total["total"] or 0)
    try:
        cache.set(key, spent, SPEND_CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        pass
    return spent
