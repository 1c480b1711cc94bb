"""Writes. Every change to support data goes through a function here."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from support import knowledge, pricing
from support.models import (
    Conversation,
    EscalationReason,
    EventField,
    IdempotencyRecord,
    KnowledgeArticle,
    Message,
    ModelPrice,
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
    """
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

    if updates.get("escalated") is True and not (updates.get("escalation_reason") or conversation.escalation_reason):
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
        return conversation
    updates["updated_at"] = now
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(**updates)
        TicketEvent.objects.bulk_create(events)
    for name, value in updates.items():
        setattr(conversation, name, value)
    return conversation


def conversation_escalate(
    *,
    conversation: Conversation,
    reason: str,
    detail: str = "",
    actor: Any = None,
    actor_label: str = WIDGET,
) -> bool:
    """Flag a conversation for human review. Returns False when it was already waiting for review."""
    current = Conversation.objects.filter(pk=conversation.pk).values("status", "escalated", "escalation_reason").get()
    if current["escalated"] and current["status"] == Status.NEEDS_REVIEW:
        return False
    now = timezone.now()
    updates: dict[str, Any] = {
        "escalated": True,
        "status": Status.NEEDS_REVIEW,
        "escalation_reason": reason,
        "escalation_detail": detail[:500],
        "closed_at": None,
        "updated_at": now,
    }
    # Guarded on the state just read so two concurrent escalations write one set of events.
    claimed = Conversation.objects.filter(
        pk=conversation.pk, status=current["status"], escalated=current["escalated"]
    ).update(**updates)
    if not claimed:
        return False
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
            Conversation.objects.filter(pk=conversation.pk, summary="").update(
                summary=first_user.content[:255], question_key=pricing.normalise_question(first_user.content)
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
