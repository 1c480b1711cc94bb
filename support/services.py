"""Writes. Every change to support data goes through a function here."""

from __future__ import annotations

import hashlib
import json
import secrets
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Model, Sum
from django.utils import timezone

from support import knowledge, pricing, rollups
from support.models import (
    Conversation,
    DailyCloseRollup,
    DailyConversationRollup,
    DailyQuestionRollup,
    DailyUsageRollup,
    EscalationReason,
    EventField,
    IdempotencyRecord,
    KnowledgeArticle,
    Message,
    ModelPrice,
    Rating,
    Role,
    Source,
    Status,
    TicketEvent,
)
from support.selectors import model_price_in_effect, spend_cache_key, token_hash

WIDGET = "widget"
BOT = "bot"
SYSTEM = "system"


# --- Prices ----------------------------------------------------------------------------------
def model_price_ensure_defaults(*, using: str = "default") -> int:
    """Create the published price rows that are missing; returns how many were added."""
    added = 0
    for model, prices in pricing.DEFAULT_PRICES_USD.items():
        micros = [pricing.usd_to_micros(p) for p in prices]
        exists = (
            ModelPrice.objects.using(using)
            .filter(model=model, effective_from=pricing.DEFAULT_PRICES_EFFECTIVE_FROM)
            .exists()
        )
        if exists:
            continue
        ModelPrice.objects.using(using).create(
            model=model,
            input_per_mtok_micros=micros[0],
            output_per_mtok_micros=micros[1],
            cache_write_5m_per_mtok_micros=micros[2],
            cache_write_1h_per_mtok_micros=micros[3],
            cache_read_per_mtok_micros=micros[4],
            effective_from=pricing.DEFAULT_PRICES_EFFECTIVE_FROM,
        )
        added += 1
    return added


def price_resolve(*, model: str, at: datetime) -> tuple[ModelPrice | None, bool]:
    """The price row for `model` at `at`; falls back to the default model's row (second item True)."""
    price = model_price_in_effect(model=model, at=at)
    if price is not None:
        return price, False
    return model_price_in_effect(model=settings.SUPPORT_DEFAULT_MODEL, at=at), True


# --- Knowledge base --------------------------------------------------------------------------
def knowledge_article_seed_samples(*, using: str = "default") -> int:
    """Add the sample articles that are missing (by title); returns how many were added.

    The data migration calls the same code, so a fresh install answers pricing, getting-started,
    contact and booking questions before anyone edits the knowledge base.
    """
    return knowledge.seed_samples(KnowledgeArticle, support_email=settings.SUPPORT_EMAIL, using=using)


# --- Conversations ---------------------------------------------------------------------------
def conversation_create(
    *,
    source: str = Source.WEB,
    page_url: str = "",
    user_agent: str = "",
    user_id: str = "",
    business_id: str = "",
) -> tuple[Conversation, str]:
    """Start a conversation; returns it with its widget secret, which is stored only as a hash."""
    token = secrets.token_urlsafe(32)
    conversation = Conversation.objects.create(
        source=source,
        page_url=page_url,
        user_agent=user_agent[:512],
        user_id=user_id,
        business_id=business_id,
        token_hash=token_hash(token),
    )
    rollup_state_move(old=None, new=rollups.state_key_of(conversation))
    return conversation, token


def _event(
    *, conversation: Conversation, actor: Any, actor_label: str, field: str, old: object, new: object
) -> TicketEvent:
    return TicketEvent(
        conversation=conversation,
        actor=actor,
        actor_label=actor_label,
        field=field,
        old_value="" if old is None else str(old),
        new_value="" if new is None else str(new),
    )


def _user_label(user: Any) -> str:
    return "" if user is None else user.get_username()


def conversation_update(
    *, conversation: Conversation, actor: Any, changes: dict[str, Any], actor_label: str | None = None
) -> Conversation:
    """Apply staff changes (status, escalated, escalation_reason, assigned_to, notes, contact_email).

    Each field that really changes writes one ticket event. Closing stamps closed_at; reopening clears it.
    The write is guarded on the state it was computed from, so a concurrent change (an escalation from
    the widget) makes it recompute rather than count the ticket in the wrong rollup row.
    """
    for _attempt in range(5):
        applied = _conversation_update_once(
            conversation=conversation, actor=actor, changes=changes, actor_label=actor_label
        )
        if applied:
            return conversation
        conversation.refresh_from_db()
    raise RuntimeError(f"Conversation {conversation.pk} kept changing under an update; try again.")


def _conversation_update_once(
    *, conversation: Conversation, actor: Any, changes: dict[str, Any], actor_label: str | None
) -> bool:
    label = actor_label or _user_label(actor) or SYSTEM
    now = timezone.now()
    events: list[TicketEvent] = []
    updates: dict[str, Any] = {}

    for field_name in ("status", "escalated", "escalation_reason", "notes", "contact_email"):
        if field_name not in changes:
            continue
        new = changes[field_name]
        old = getattr(conversation, field_name)
        if new == old:
            continue
        updates[field_name] = new
        events.append(
            _event(conversation=conversation, actor=actor, actor_label=label, field=field_name, old=old, new=new)
        )

    if "assigned_to" in changes:
        new_user = changes["assigned_to"]
        if (new_user.pk if new_user else None) != conversation.assigned_to_id:
            updates["assigned_to"] = new_user
            events.append(
                _event(
                    conversation=conversation,
                    actor=actor,
                    actor_label=label,
                    field=EventField.ASSIGNED_TO,
                    old=_user_label(conversation.assigned_to),
                    new=_user_label(new_user),
                )
            )

    if updates.get("escalated") is True:
        updates["escalated_at"] = now
        if not (updates.get("escalation_reason") or conversation.escalation_reason):
            updates["escalation_reason"] = EscalationReason.STAFF
            events.append(
                _event(
                    conversation=conversation,
                    actor=actor,
                    actor_label=label,
                    field=EventField.ESCALATION_REASON,
                    old="",
                    new=EscalationReason.STAFF,
                )
            )
    if "status" in updates:
        if updates["status"] == Status.CLOSED:
            updates["closed_at"] = now
        elif conversation.status == Status.CLOSED:
            updates["closed_at"] = None

    if not updates:
        return True
    updates["updated_at"] = now
    old_key = rollups.state_key_of(conversation)
    with transaction.atomic():
        claimed = Conversation.objects.filter(
            pk=conversation.pk,
            status=conversation.status,
            escalated=conversation.escalated,
            escalation_reason=conversation.escalation_reason,
            rating=conversation.rating,
        ).update(**updates)
        if not claimed:
            return False
        TicketEvent.objects.bulk_create(events)
        for name, value in updates.items():
            setattr(conversation, name, value)
        rollup_state_move(old=old_key, new=rollups.state_key_of(conversation))
    return True


def conversation_escalate(
    *,
    conversation: Conversation,
    reason: str,
    detail: str = "",
    actor: Any = None,
    actor_label: str = WIDGET,
) -> bool:
    """Flag a conversation for human review. Returns False when it was already waiting for review."""
    current = (
        Conversation.objects.filter(pk=conversation.pk)
        .values(
            "status", "escalated", "escalation_reason", "created_at", "source", "escalated_at", "closed_at", "rating"
        )
        .get()
    )
    if current["escalated"] and current["status"] == Status.NEEDS_REVIEW:
        return False
    now = timezone.now()
    updates: dict[str, Any] = {
        "escalated": True,
        "status": Status.NEEDS_REVIEW,
        "escalation_reason": reason,
        "escalation_detail": detail[:500],
        "escalated_at": now,
        "closed_at": None,
        "updated_at": now,
    }
    # Guarded on the state just read so two concurrent escalations write one set of events.
    claimed = Conversation.objects.filter(
        pk=conversation.pk, status=current["status"], escalated=current["escalated"]
    ).update(**updates)
    if not claimed:
        return False
    rollup_state_move(
        old=rollups.state_key(**current),
        new=rollups.state_key(
            created_at=current["created_at"],
            source=current["source"],
            status=Status.NEEDS_REVIEW,
            escalated=True,
            escalation_reason=reason,
            escalated_at=now,
            closed_at=None,
            rating=current["rating"],
        ),
    )
    events = [
        _event(conversation=conversation, actor=actor, actor_label=actor_label, field=name, old=current[name], new=new)
        for name, new in (
            (EventField.ESCALATED, True),
            (EventField.STATUS, Status.NEEDS_REVIEW),
            (EventField.ESCALATION_REASON, reason),
        )
        if current[name] != new
    ]
    TicketEvent.objects.bulk_create(events)
    for name, value in updates.items():
        setattr(conversation, name, value)
    return True


# --- Widget: the customer's rating and contact address --------------------------------------
def conversation_rate(
    *,
    conversation: Conversation,
    rating: str,
    message: Message | None = None,
    actor: Any = None,
    actor_label: str = WIDGET,
) -> Conversation:
    """Store the customer's thumbs up/down; a re-rate overwrites. A changed rating writes a ticket event."""
    if rating not in Rating.values:
        raise ValueError(f"rating must be one of {', '.join(Rating.values)}, got {rating!r}")
    if message is not None and (message.conversation_id != conversation.pk or message.role != Role.ASSISTANT):
        raise ValueError("Only an assistant reply of this conversation can be rated.")
    now = timezone.now()
    updates: dict[str, Any] = {"rating": rating, "rated_at": now, "rated_message": message, "updated_at": now}
    for _attempt in range(5):
        conversation.refresh_from_db()
        old = conversation.rating
        old_key = rollups.state_key_of(conversation)
        # Guarded on the state just read, so a concurrent status change or re-rate cannot leave the
        # conversation counted in the wrong CSAT rollup row; on a lost race, read again.
        claimed = Conversation.objects.filter(
            pk=conversation.pk,
            status=conversation.status,
            escalated=conversation.escalated,
            escalation_reason=conversation.escalation_reason,
            rating=old,
        ).update(**updates)
        if claimed:
            break
    else:
        raise RuntimeError("The conversation kept changing while it was being rated; try again.")
    for name, value in updates.items():
        setattr(conversation, name, value)
    rollup_state_move(old=old_key, new=rollups.state_key_of(conversation))
    if old != rating:
        event = _event(
            conversation=conversation,
            actor=actor,
            actor_label=actor_label,
            field=EventField.RATING,
            old=old,
            new=rating,
        )
        event.save()
    return conversation


def conversation_contact_set(
    *, conversation: Conversation, email: str, actor: Any = None, actor_label: str = WIDGET
) -> Conversation:
    """Record where the customer wants the human reply (the widget's form after an escalation)."""
    return conversation_update(
        conversation=conversation, actor=actor, actor_label=actor_label, changes={"contact_email": email.strip()}
    )


# --- Messages --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    is_partial: bool = False
    latency_ms: int | None = None
    first_token_ms: int | None = None
    #: False for a turn that is not a Claude call (the chat proxy's customer turns, offline answers):
    #: stored with no model and no price, so it never counts as Claude usage.
    priced: bool = True
    #: price_resolve()'s answer for this turn's model, when the caller looked it up ahead (the chat proxy
    #: does it while Claude is still writing, so storing the reply costs one query less).
    resolved_price: tuple[ModelPrice | None, bool] | None = None


def message_log(
    *,
    conversation: Conversation,
    turns: Sequence[Turn],
    is_escalation: bool = False,
    escalation_reason: str = EscalationReason.WIDGET_FLAG,
    escalation_detail: str = "",
    actor: Any = None,
    actor_label: str = WIDGET,
    refresh: bool = True,
    counters: bool = True,
) -> list[Message]:
    """Store turns, price them, and add them to the conversation's counters without lost updates.

    For callers on a hot path: `refresh=False` skips re-reading the conversation afterwards (its counters
    stay as they were in memory; escalation fields are still updated), and `counters=False` leaves the
    counters to a later conversation_counters_add(messages=...) call, outside this transaction."""
    now = timezone.now()
    messages: list[Message] = []
    for turn in turns:
        if turn.priced:
            model = turn.model or settings.SUPPORT_DEFAULT_MODEL
            price, fallback = turn.resolved_price or price_resolve(model=model, at=now)
        else:
            model, price, fallback = "", None, False
        usage = pricing.Usage(
            input_tokens=turn.input_tokens,
            output_tokens=turn.output_tokens,
            cache_read_tokens=turn.cache_read_tokens,
            cache_write_tokens=turn.cache_write_tokens,
            cache_write_1h_tokens=turn.cache_write_1h_tokens,
        )
        messages.append(
            Message(
                conversation=conversation,
                role=turn.role,
                content=turn.content,
                model=model,
                input_tokens=turn.input_tokens,
                output_tokens=turn.output_tokens,
                cache_read_tokens=turn.cache_read_tokens,
                cache_write_tokens=turn.cache_write_tokens,
                cache_write_1h_tokens=turn.cache_write_1h_tokens,
                cost_micros=pricing.cost_micros(price, usage),
                price=price,
                price_fallback=fallback,
                is_escalation=is_escalation and turn.role == Role.ASSISTANT,
                is_partial=turn.is_partial,
                latency_ms=turn.latency_ms,
                first_token_ms=turn.first_token_ms,
                created_at=now,
            )
        )
    if is_escalation and not any(m.is_escalation for m in messages) and messages:
        messages[-1].is_escalation = True

    with transaction.atomic():
        for message in messages:
            message.save(force_insert=True)
        if counters:
            conversation_counters_add(conversation=conversation, messages=messages)
        first_user = next((m for m in messages if m.role == Role.USER), None)
        if first_user is not None and not conversation.summary:
            question_key = pricing.normalise_question(first_user.content)
            # Guarded on an empty summary: only the first writer counts the question.
            claimed = Conversation.objects.filter(pk=conversation.pk, summary="").update(
                summary=first_user.content[:255], question_key=question_key
            )
            if claimed and question_key:
                _rollup_add(
                    DailyQuestionRollup,
                    key={"day": rollups.utc_day(conversation.created_at), "question_key": question_key},
                    conversations=1,
                )
    _spend_add(day=now.date(), micros=sum(m.cost_micros for m in messages))
    if is_escalation:
        conversation_escalate(
            conversation=conversation,
            reason=escalation_reason,
            detail=escalation_detail,
            actor=actor,
            actor_label=actor_label,
        )
    if refresh:
        conversation.refresh_from_db()
    return messages


def conversation_counters_add(*, conversation: Conversation, messages: Sequence[Message]) -> None:
    """Add stored messages to the conversation's counters, tokens and cost."""
    # F() increments are applied by the database, so concurrent loggers never overwrite each other.
    Conversation.objects.filter(pk=conversation.pk).update(
        message_count=F("message_count") + len(messages),
        total_input_tokens=F("total_input_tokens") + sum(m.input_tokens for m in messages),
        total_output_tokens=F("total_output_tokens") + sum(m.output_tokens for m in messages),
        total_cache_read_tokens=F("total_cache_read_tokens") + sum(m.cache_read_tokens for m in messages),
        total_cache_write_tokens=F("total_cache_write_tokens") + sum(m.cache_write_tokens for m in messages),
        cost_micros=F("cost_micros") + sum(m.cost_micros for m in messages),
        updated_at=max((m.created_at for m in messages), default=timezone.now()),
    )
    _usage_rollups_add(conversation=conversation, messages=messages)


def _usage_rollups_add(*, conversation: Conversation, messages: Sequence[Message]) -> None:
    models_used = {m.model for m in messages}
    # A model counts a conversation once: did the conversation use it before these messages?
    seen_models = set(
        Message.objects.filter(conversation=conversation, model__in=models_used)
        .exclude(pk__in=[m.pk for m in messages])
        .values_list("model", flat=True)
        .distinct()
    )
    day = rollups.utc_day(conversation.created_at)
    for model in sorted(models_used):
        of_model = [m for m in messages if m.model == model]
        _rollup_add(
            DailyUsageRollup,
            key={"day": day, "source": conversation.source, "model": model},
            conversations=0 if model in seen_models else 1,
            messages=len(of_model),
            input_tokens=sum(m.input_tokens for m in of_model),
            output_tokens=sum(m.output_tokens for m in of_model),
            cache_read_tokens=sum(m.cache_read_tokens for m in of_model),
            cache_write_tokens=sum(m.cache_write_tokens for m in of_model),
            cost_micros=sum(m.cost_micros for m in of_model),
        )


def _spend_add(*, day: Any, micros: int) -> None:
    """Keep the briefly cached daily spend (selectors.spend_today_micros) current between recomputes.

    Only with a budget cap: without one nothing reads the figure, so no turn pays for a cache write."""
    if micros <= 0 or settings.SUPPORT_DAILY_BUDGET_USD <= 0:
        return
    try:
        cache.incr(spend_cache_key(day), micros)
    except ValueError:
        pass  # not cached: the next read sums the database, this turn included
    except Exception:  # noqa: BLE001 - the cache is an optimisation; the stored turn is what counts
        pass


def conversation_recount(*, conversation: Conversation) -> Conversation:
    """Recompute counters and cost from the stored messages (repairs drift after an outage)."""
    from django.db.models import Count, Sum

    totals = Message.objects.filter(conversation=conversation).aggregate(
        n=Count("pk"),
        inp=Sum("input_tokens"),
        out=Sum("output_tokens"),
        cr=Sum("cache_read_tokens"),
        cw=Sum("cache_write_tokens"),
        cost=Sum("cost_micros"),
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        message_count=totals["n"] or 0,
        total_input_tokens=totals["inp"] or 0,
        total_output_tokens=totals["out"] or 0,
        total_cache_read_tokens=totals["cr"] or 0,
        total_cache_write_tokens=totals["cw"] or 0,
        cost_micros=totals["cost"] or 0,
    )
    conversation.refresh_from_db()
    return conversation


# --- Daily rollups ---------------------------------------------------------------------------
def _rollup_add(model: type[Model], *, key: dict[str, Any], **amounts: int) -> None:
    """Add `amounts` to the rollup row for `key`, creating it if needed; safe under concurrent writers.

    The row usually exists, so the cheap path is one F() update. A missing row is created inside a
    savepoint; if another writer created it first the unique constraint refuses ours and we update.
    """
    amounts = {name: value for name, value in amounts.items() if value}
    if not amounts:
        return
    increments = {name: F(name) + value for name, value in amounts.items()}
    if model.objects.filter(**key).update(**increments):
        return
    try:
        with transaction.atomic():
            model.objects.create(**key, **amounts)
        return
    except IntegrityError:
        pass
    model.objects.filter(**key).update(**increments)


def rollup_state_move(*, old: rollups.StateKey | None, new: rollups.StateKey | None) -> None:
    """Move one conversation from its old state rows to its new ones (either may be None)."""
    if old == new:
        return
    old_state, new_state = (key.as_filter() if key else None for key in (old, new))
    if old_state != new_state:
        if old_state is not None:
            _rollup_add(DailyConversationRollup, key=old_state, conversations=-1)
        if new_state is not None:
            _rollup_add(DailyConversationRollup, key=new_state, conversations=1)
    old_close, new_close = (key.close_filter() if key else None for key in (old, new))
    if old_close != new_close:
        if old_close is not None:
            _rollup_add(DailyCloseRollup, key=old_close, conversations=-1)
        if new_close is not None:
            _rollup_add(DailyCloseRollup, key=new_close, conversations=1)


@dataclass(frozen=True)
class RebuildResult:
    conversations: int
    messages: int
    rows: int


ProgressCallback = Callable[[int, int], None]

_USAGE_FIELDS = (
    "conversations",
    "messages",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
)


def _batched_by_pk(queryset: Any, *, fields: Sequence[str], batch_size: int) -> Iterable[list[tuple[Any, ...]]]:
    """Rows in primary-key order, a batch at a time (keyset paging: no OFFSET, no open cursor)."""
    last = None
    while True:
        page = queryset if last is None else queryset.filter(pk__gt=last)
        rows = list(page.order_by("pk").values_list("pk", *fields)[:batch_size])
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def rollups_rebuild(*, batch_size: int = 2000, progress: ProgressCallback | None = None) -> RebuildResult:
    """Recompute every rollup row from conversations and messages.

    Reads in primary-key batches (calling `progress(done, total)` after each), then replaces the
    rollup tables. Writes logged while it runs may be missed: run it when the desk is quiet, or run
    it again. Memory grows with the number of rollup rows (days x sources x models...), not messages.
    """
    total = Conversation.objects.count()
    state: Counter[tuple[Any, ...]] = Counter()
    closes: Counter[tuple[date, int]] = Counter()
    questions: Counter[tuple[date, str]] = Counter()
    usage: defaultdict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0] * len(_USAGE_FIELDS))
    done = messages_seen = 0
    fields = (
        "created_at",
        "source",
        "status",
        "escalated",
        "escalation_reason",
        "escalated_at",
        "closed_at",
        "rating",
    )
    for rows in _batched_by_pk(Conversation.objects.all(), fields=(*fields, "question_key"), batch_size=batch_size):
        where: dict[Any, tuple[date, str]] = {}
        for pk, *values, question_key in rows:
            key = rollups.state_key(**dict(zip(fields, values, strict=True)))
            state[tuple(key.as_filter().values())] += 1
            if key.close_bucket != rollups.NO_BUCKET:
                closes[(key.day, key.close_bucket)] += 1
            where[pk] = (key.day, key.source)
            if question_key:
                questions[(key.day, question_key)] += 1
        per_model = (
            Message.objects.filter(conversation_id__in=list(where))
            .values("conversation_id", "model")
            .annotate(
                n=Count("pk"),
                inp=Sum("input_tokens"),
                out=Sum("output_tokens"),
                cr=Sum("cache_read_tokens"),
                cw=Sum("cache_write_tokens"),
                cost=Sum("cost_micros"),
            )
        )
        for row in per_model:
            day, source = where[row["conversation_id"]]
            totals = usage[(day, source, row["model"])]
            for index, value in enumerate((1, row["n"], row["inp"], row["out"], row["cr"], row["cw"], row["cost"])):
                totals[index] += value or 0
            messages_seen += row["n"]
        done += len(rows)
        if progress is not None:
            progress(done, total)

    state_names = ("day", "source", "status", "escalated", "escalation_reason", "rating")
    state_rows = [
        DailyConversationRollup(**dict(zip(state_names, key, strict=True)), conversations=n) for key, n in state.items()
    ]
    close_rows = [DailyCloseRollup(day=day, close_bucket=b, conversations=n) for (day, b), n in closes.items()]
    question_rows = [
        DailyQuestionRollup(day=day, question_key=key, conversations=n) for (day, key), n in questions.items()
    ]
    usage_rows = [
        DailyUsageRollup(day=day, source=source, model=model, **dict(zip(_USAGE_FIELDS, values, strict=True)))
        for (day, source, model), values in usage.items()
    ]
    # Not one transaction: MongoDB may not roll back, and a half-written rebuild is repaired by rerunning.
    with transaction.atomic():
        for model, new_rows in (
            (DailyConversationRollup, state_rows),
            (DailyCloseRollup, close_rows),
            (DailyQuestionRollup, question_rows),
            (DailyUsageRollup, usage_rows),
        ):
            model.objects.all().delete()
            model.objects.bulk_create(new_rows, batch_size=1000)
    return RebuildResult(
        conversations=done,
        messages=messages_seen,
        rows=len(state_rows) + len(close_rows) + len(question_rows) + len(usage_rows),
    )


# --- Repricing -------------------------------------------------------------------------------
def _price_resolver(*, model: str) -> Callable[[datetime], tuple[ModelPrice | None, bool]]:
    """price_resolve for many moments with two queries in all: the model's rows and the default's."""

    def rows_for(name: str) -> list[ModelPrice]:
        return list(ModelPrice.objects.filter(model=name).order_by("effective_from"))

    own, default = rows_for(model), rows_for(settings.SUPPORT_DEFAULT_MODEL)

    def in_effect(rows: list[ModelPrice], at: datetime) -> ModelPrice | None:
        index = bisect_right([row.effective_from for row in rows], at)
        return rows[index - 1] if index else None

    def resolve(at: datetime) -> tuple[ModelPrice | None, bool]:
        price = in_effect(own, at)
        return (price, False) if price is not None else (in_effect(default, at), True)

    return resolve


@dataclass(frozen=True)
class RepriceResult:
    messages: int
    changed: int
    conversations: int
    old_total_micros: int
    new_total_micros: int


def messages_reprice(
    *,
    model: str,
    since: date,
    dry_run: bool = False,
    batch_size: int = 2000,
    progress: ProgressCallback | None = None,
) -> RepriceResult:
    """Re-cost `model`'s turns logged on or after `since` (UTC) with the price rows now in effect.

    After a price correction (a new ModelPrice row, or an edited one) each turn is priced with the
    row in effect when it was logged, exactly as message_log would have. Conversations' costs and the
    usage rollups move by the same differences with F() updates, so concurrent logging is not lost.
    """
    start = datetime.combine(since, time.min, tzinfo=UTC)
    messages = Message.objects.filter(model=model, created_at__gte=start)
    total = messages.count()
    resolve = _price_resolver(model=model)
    conversation_delta: Counter[Any] = Counter()
    old_total = new_total = changed = done = 0
    fields = (
        "conversation_id",
        "created_at",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "cost_micros",
        "price_id",
        "price_fallback",
    )
    for rows in _batched_by_pk(messages, fields=fields, batch_size=batch_size):
        for pk, conversation_id, created_at, inp, out, cr, cw, cw1h, cost, price_id, fallback in rows:
            price, new_fallback = resolve(created_at)
            usage = pricing.Usage(
                input_tokens=inp,
                output_tokens=out,
                cache_read_tokens=cr,
                cache_write_tokens=cw,
                cache_write_1h_tokens=cw1h,
            )
            new_cost = pricing.cost_micros(price, usage)
            new_price_id = price.pk if price is not None else None
            old_total += cost
            new_total += new_cost
            if (new_cost, new_price_id, new_fallback) == (cost, price_id, fallback):
                continue
            changed += 1
            conversation_delta[conversation_id] += new_cost - cost
            if not dry_run:
                Message.objects.filter(pk=pk).update(
                    cost_micros=new_cost, price_id=new_price_id, price_fallback=new_fallback
                )
        done += len(rows)
        if progress is not None:
            progress(done, total)

    moved = {pk: delta for pk, delta in conversation_delta.items() if delta}
    if not dry_run and moved:
        owners = {
            pk: (rollups.utc_day(created_at), source)
            for pk, created_at, source in Conversation.objects.filter(pk__in=list(moved)).values_list(
                "pk", "created_at", "source"
            )
        }
        usage_delta: Counter[tuple[date, str]] = Counter()
        for pk, delta in moved.items():
            Conversation.objects.filter(pk=pk).update(cost_micros=F("cost_micros") + delta)
            if pk in owners:
                usage_delta[owners[pk]] += delta
        for (day, source), delta in usage_delta.items():
            if delta:
                _rollup_add(DailyUsageRollup, key={"day": day, "source": source, "model": model}, cost_micros=delta)
    return RepriceResult(
        messages=total,
        changed=changed,
        conversations=len(moved),
        old_total_micros=old_total,
        new_total_micros=new_total,
    )


# --- Idempotency -----------------------------------------------------------------------------
def request_fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def idempotency_claim(*, conversation: Conversation, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Reserve `key` for this conversation. Returns (record, True) for the first request, else the existing one."""
    try:
        with transaction.atomic():  # a savepoint, so the IntegrityError leaves an outer transaction usable
            record = IdempotencyRecord.objects.create(conversation=conversation, key=key, fingerprint=fingerprint)
        return record, True
    except IntegrityError:
        return IdempotencyRecord.objects.get(conversation=conversation, key=key), False


def idempotency_complete(*, record: IdempotencyRecord, response: Any) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(response=response)


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget a claim whose request failed, so the client's retry runs it again."""
    IdempotencyRecord.objects.filter(pk=record.pk).delete()
