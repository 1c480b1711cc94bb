"""Writes. Every change to support data goes through a function here."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import sleep
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Min, Model
from django.utils import timezone
from pymongo.errors import PyMongoError

from support import pricing, rollups
from support.bot import knowledge
from support.models import (
    QUEUE_STATUSES,
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
    MessageOrigin,
    ModelPrice,
    Rating,
    Role,
    Source,
    Status,
    TicketEvent,
    TicketNote,
)
from support.selectors import (
    CLIENT_COLUMNS,
    USAGE_COLUMNS,
    message_usage_sums,
    models_prices_in_effect,
    token_hash,
    usage_model_filter,
)

logger = logging.getLogger(__name__)

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
    return prices_resolve(models={model}, at=at)[model]


def prices_resolve(*, models: set[str], at: datetime) -> dict[str, tuple[ModelPrice | None, bool]]:
    """price_resolve for several models (and the default model) in one query."""
    in_effect = models_prices_in_effect(models={*models, settings.SUPPORT_DEFAULT_MODEL}, at=at)
    default = in_effect.get(settings.SUPPORT_DEFAULT_MODEL)
    return {model: (in_effect[model], False) if model in in_effect else (default, True) for model in models}


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


class ConversationConflict(Exception):
    """A state change kept losing the race to concurrent changes of the same conversation; nothing was written.

    The API answers 409 and the dashboard shows a message: the caller may simply try again."""

    def __init__(self, conversation_id: object) -> None:
        super().__init__(f"Conversation {conversation_id} kept changing under this change; try again.")
        self.conversation_id = conversation_id


#: Every field the rollup rows read (rollups.state_key). A change is written only if none of them moved
#: since it was computed, so the conversation leaves exactly the rollup rows it was counted in.
STATE_FIELDS = (
    "created_at",
    "source",
    "status",
    "escalated",
    "escalation_reason",
    "escalated_at",
    "closed_at",
    "rating",
)
#: Fields whose change writes a ticket event; they are compared too, so each event's old value is the real one.
EVENT_FIELDS: tuple[str, ...] = (
    EventField.STATUS,
    EventField.ESCALATED,
    EventField.ESCALATION_REASON,
    EventField.ESCALATION_DETAIL,
    EventField.CONTACT_EMAIL,
    EventField.ASSIGNED_TO,
    EventField.RATING,
)
TRANSITION_ATTEMPTS = 8

#: The changes to make, or a function of the conversation as just read that returns them (None: nothing to do).
Changes = dict[str, Any] | Callable[[Conversation], dict[str, Any] | None]


def conversation_transition(
    *, conversation: Conversation, changes: Changes, actor: Any = None, actor_label: str | None = None
) -> bool:
    """The one way to change a conversation's status, escalation, assignment, rating, notes or contact.

    Compare-and-set on the state the change was computed from, one ticket event per field that really
    changes, and the rollup move, in one place. On a lost race it reads the row again by pk and recomputes,
    up to TRANSITION_ATTEMPTS times, then raises ConversationConflict. On SQLite the re-read happens under
    the write lock (IMMEDIATE transactions), so the second attempt cannot lose. Returns False when there
    was nothing to change; `conversation` is updated in memory either way.
    """
    label = actor_label or _user_label(actor) or SYSTEM
    lost = False
    for attempt in range(TRANSITION_ATTEMPTS):
        if lost and connection.vendor == "mongodb":
            # No write lock to queue on: spread the retries so racing writers stop colliding.
            sleep(random.uniform(0, 0.002 * 2**attempt))
        with transaction.atomic():
            if attempt:
                conversation.refresh_from_db()
            wanted = changes(conversation) if callable(changes) else changes
            updates = _transition_updates(conversation=conversation, wanted=wanted or {}, now=timezone.now())
            if not updates:
                if attempt:
                    return False
                # "Nothing to do" judged on the caller's copy, which may be stale: confirm on the stored row.
                lost = False
                continue
            lost = not _transition_write(conversation=conversation, updates=updates, actor=actor, label=label)
            if not lost:
                return True
    raise ConversationConflict(conversation.pk)


def _transition_updates(*, conversation: Conversation, wanted: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The field values to write: the wanted ones that differ, plus the stamps they imply."""
    updates: dict[str, Any] = {}
    for name, value in wanted.items():
        current = conversation.assigned_to_id if name == "assigned_to" else getattr(conversation, name)
        new = value.pk if name == "assigned_to" and value is not None else value
        if name not in EVENT_FIELDS or new != current or _escalation_entry(name, value, wanted):
            updates[name] = value
    if "rated_at" not in updates and not any(name in EVENT_FIELDS for name in updates):
        return {}  # only stamps left (escalation_detail...): no change worth a write; a re-rate is one
    if updates.get("escalated") is True and not conversation.escalated:
        updates.setdefault("escalated_at", now)
        if not (updates.get("escalation_reason") or conversation.escalation_reason):
            updates["escalation_reason"] = EscalationReason.STAFF
    if "status" in updates and "closed_at" not in updates:
        if updates["status"] == Status.CLOSED:
            updates["closed_at"] = now
        elif conversation.status == Status.CLOSED:
            updates["closed_at"] = None
    updates["updated_at"] = now
    return updates


def _escalation_entry(name: str, value: Any, wanted: dict[str, Any]) -> bool:
    """Every escalation is an entry in the ticket's list of escalations (selectors.escalation_list):
    its reason, and its detail when there is one, are written even when unchanged."""
    if "escalated_at" not in wanted:
        return False
    return name == EventField.ESCALATION_REASON or (name == EventField.ESCALATION_DETAIL and bool(value))


def _transition_write(*, conversation: Conversation, updates: dict[str, Any], actor: Any, label: str) -> bool:
    """Compare-and-set `updates` on the state in memory; on success write the events and move the rollups."""
    guard = {name: getattr(conversation, name) for name in STATE_FIELDS}
    for name in EVENT_FIELDS:
        if name in updates and name not in guard:
            key = "assigned_to_id" if name == "assigned_to" else name
            guard[key] = getattr(conversation, key)
    if not Conversation.objects.filter(pk=conversation.pk, **guard).update(**updates):
        return False
    events = [
        _event(
            conversation=conversation,
            actor=actor,
            actor_label=label,
            field=name,
            old=_user_label(conversation.assigned_to) if name == "assigned_to" else getattr(conversation, name),
            new=_user_label(updates[name]) if name == "assigned_to" else updates[name],
        )
        for name in updates  # in the caller's order: an escalation reads "escalated", then "status"
        if name in EVENT_FIELDS and (name != EventField.ESCALATION_DETAIL or updates[name])
    ]
    old_key = rollups.state_key_of(conversation)
    for name, value in updates.items():
        setattr(conversation, name, value)
    TicketEvent.objects.bulk_create(events)
    rollup_state_move(old=old_key, new=rollups.state_key_of(conversation))
    return True


def conversation_update(
    *, conversation: Conversation, actor: Any, changes: dict[str, Any], actor_label: str | None = None
) -> Conversation:
    """Apply staff changes (status, escalated, escalation_reason, assigned_to, notes, contact_email).

    Each field that really changes writes one ticket event. Closing stamps closed_at; reopening clears it.
    Raises ConversationConflict when concurrent changes outlast the retries (conversation_transition).
    """
    note = str(changes.get("notes") or "").strip()
    # Notes are a timeline: the text is one more entry (ticket_note_add), never a replacement.
    allowed = ("status", "escalated", "escalation_reason", "contact_email", "assigned_to")
    wanted = {name: changes[name] for name in allowed if name in changes}
    conversation_transition(conversation=conversation, changes=wanted, actor=actor, actor_label=actor_label)
    if note:
        ticket_note_add(conversation=conversation, author=actor, text=note, author_label=actor_label)
    return conversation


def _escalation(*, reason: str, detail: str, now: datetime) -> dict[str, Any]:
    return {
        "escalated": True,
        "status": Status.NEEDS_REVIEW,
        "escalation_reason": reason,
        "escalation_detail": detail[:500],
        "escalated_at": now,
        "closed_at": None,
    }


def _awaits_review(conversation: Conversation) -> bool:
    return conversation.escalated and conversation.status == Status.NEEDS_REVIEW


#: Between two notes in Conversation.notes, the joined copy of the timeline the API returns as `notes`.
NOTES_SEPARATOR = "\n\n"


def ticket_note_add(
    *, conversation: Conversation, author: Any, text: str, author_label: str | None = None
) -> TicketNote:
    """Append a staff note to the ticket's timeline, with a history event and the API's joined copy.

    The joined copy (Conversation.notes) is extended with a compare-and-set on its current value, so
    concurrent notes each land once and none overwrites another.
    """
    label = author_label or _user_label(author) or SYSTEM
    with transaction.atomic():
        note = TicketNote.objects.create(conversation=conversation, author=author, author_label=label, text=text)
        TicketEvent.objects.create(
            conversation=conversation,
            actor=author,
            actor_label=label,
            field=EventField.NOTES,
            old_value="",
            new_value=text,
        )
    for _attempt in range(50):
        current = Conversation.objects.filter(pk=conversation.pk).values_list("notes", flat=True).get()
        joined = f"{current}{NOTES_SEPARATOR}{text}" if current else text
        if Conversation.objects.filter(pk=conversation.pk, notes=current).update(
            notes=joined, updated_at=timezone.now()
        ):
            conversation.notes = joined
            return note
    raise RuntimeError(f"Conversation {conversation.pk} kept changing under a note; the note is kept.")


def conversation_escalate(
    *,
    conversation: Conversation,
    reason: str,
    detail: str = "",
    actor: Any = None,
    actor_label: str = WIDGET,
) -> bool:
    """Flag a conversation for human review. Returns False when it was already waiting for review."""

    def escalation(current: Conversation) -> dict[str, Any] | None:
        return None if _awaits_review(current) else _escalation(reason=reason, detail=detail, now=timezone.now())

    return conversation_transition(conversation=conversation, changes=escalation, actor=actor, actor_label=actor_label)


# --- Widget: the customer's rating and contact address --------------------------------------
def conversation_rate(
    *,
    conversation: Conversation,
    rating: str,
    message: Message | None = None,
    actor: Any = None,
    actor_label: str = WIDGET,
) -> Conversation:
    """Store the customer's thumbs up/down; a re-rate overwrites. A changed rating writes a ticket event.

    A new thumbs-down on a conversation nobody is working on (auto-resolved or closed) flags it for
    review with the reason `thumbs_down`, in the same write as the rating.
    """
    if rating not in Rating.values:
        raise ValueError(f"rating must be one of {', '.join(Rating.values)}, got {rating!r}")
    if message is not None and (message.conversation_id != conversation.pk or message.role != Role.ASSISTANT):
        raise ValueError("Only an assistant reply of this conversation can be rated.")

    def rated(current: Conversation) -> dict[str, Any]:
        now = timezone.now()
        wanted: dict[str, Any] = {"rating": rating, "rated_at": now, "rated_message": message}
        if rating == Rating.DOWN and current.rating != Rating.DOWN and current.status not in QUEUE_STATUSES:
            wanted |= _escalation(reason=EscalationReason.THUMBS_DOWN, detail="", now=now)
        return wanted

    conversation_transition(conversation=conversation, changes=rated, actor=actor, actor_label=actor_label)
    return conversation


def conversation_contact_set(
    *, conversation: Conversation, email: str, actor: Any = None, actor_label: str = WIDGET
) -> Conversation:
    """Record where the customer wants the human reply (the widget's form after an escalation)."""
    conversation_transition(
        conversation=conversation, changes={"contact_email": email.strip()}, actor=actor, actor_label=actor_label
    )
    return conversation


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
    #: Claude stopped at max_tokens (the reply is cut short).
    is_truncated: bool = False
    latency_ms: int | None = None
    first_token_ms: int | None = None
    #: False for a turn that is not a Claude call (the chat proxy's customer turns, offline answers):
    #: stored with no model and no price, so it never counts as Claude usage.
    priced: bool = True
    #: price_resolve()'s answer for this turn's model, when the caller looked it up ahead (the chat proxy
    #: does it while Claude is still writing, so storing the reply costs one query less).
    resolved_price: tuple[ModelPrice | None, bool] | None = None
    #: Who wrote the turn. The default is the untrusted one: a writer that does not say is the widget.
    origin: str = MessageOrigin.CLIENT


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
    turn_limit: int | None = None,
) -> list[Message]:
    """Store turns, price them, and add them to the conversation's counters without lost updates.

    For callers on a hot path: `refresh=False` skips re-reading the conversation afterwards (its counters
    stay as they were in memory; escalation fields are still updated), and `counters=False` leaves the
    counters and usage rollups to a later conversation_counters_add(messages=...) call."""
    messages = messages_build(conversation=conversation, turns=turns, is_escalation=is_escalation)
    return messages_store(
        conversation=conversation,
        messages=messages,
        is_escalation=is_escalation,
        escalation_reason=escalation_reason,
        escalation_detail=escalation_detail,
        actor=actor,
        actor_label=actor_label,
        refresh=refresh,
        counters=counters,
        turn_limit=turn_limit,
    )


def messages_build(*, conversation: Conversation, turns: Sequence[Turn], is_escalation: bool = False) -> list[Message]:
    """Priced, unsaved Message rows for `turns` (reads only, so it runs before any write lock is taken)."""
    now = timezone.now()
    messages: list[Message] = []
    # One query for the prices of every model in the batch whose price was not looked up already.
    unpriced = {
        turn.model or settings.SUPPORT_DEFAULT_MODEL for turn in turns if turn.priced and not turn.resolved_price
    }
    prices = prices_resolve(models=unpriced, at=now) if unpriced else {}
    for turn in turns:
        if turn.priced:
            model = turn.model or settings.SUPPORT_DEFAULT_MODEL
            price, fallback = turn.resolved_price or prices[model]
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
                origin=turn.origin,
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
                is_truncated=turn.is_truncated,
                latency_ms=turn.latency_ms,
                first_token_ms=turn.first_token_ms,
                created_at=now,
            )
        )
    if is_escalation and not any(m.is_escalation for m in messages) and messages:
        messages[-1].is_escalation = True
    return messages


def messages_store(
    *,
    conversation: Conversation,
    messages: list[Message],
    is_escalation: bool = False,
    escalation_reason: str = EscalationReason.WIDGET_FLAG,
    escalation_detail: str = "",
    actor: Any = None,
    actor_label: str = WIDGET,
    refresh: bool = True,
    counters: bool = True,
    turn_limit: int | None = None,
) -> list[Message]:
    """Insert messages_build()'s rows, add them to the conversation's counters and the daily rollups.

    With `turn_limit` the turns are first claimed under it (TurnLimitReached when there is no room), in
    the same transaction as the insert: a request that fails after the claim gives its turns back."""
    # savepoint=False: inside message_log_once's transaction a failure rolls the whole request back.
    with (
        transaction.atomic(savepoint=False),
        _turns_claimed(conversation=conversation, turns=len(messages), limit=turn_limit),
    ):
        # One INSERT for the turns; both databases hand the new primary keys back.
        Message.objects.bulk_create(messages)
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


class TurnLimitReached(Exception):
    """The conversation holds SUPPORT_CHAT_MAX_TURNS turns already (or they are claimed)."""


@contextmanager
def _turns_claimed(*, conversation: Conversation, turns: int, limit: int | None) -> Iterator[None]:
    """Claim `turns` under `limit` for the writes inside; give them back if those writes fail where the
    database does not roll the claim back with them (MongoDB outside a transaction)."""
    if limit is None:
        yield
        return
    if not conversation_turns_reserve(conversation=conversation, turns=turns, limit=limit):
        raise TurnLimitReached(conversation.pk)
    try:
        yield
    except BaseException:
        if not _rolls_back_with_failure():
            conversation_turns_release(conversation=conversation, turns=turns)
        raise


def _rolls_back_with_failure() -> bool:
    """Whether a failure now undoes the writes made so far in this block (a real transaction is open)."""
    if connection.vendor == "mongodb":
        return bool(getattr(connection, "in_atomic_block_mongo", False))
    return connection.in_atomic_block


def conversation_turns_reserve(*, conversation: Conversation, turns: int, limit: int) -> bool:
    """Claim `turns` of the conversation's turn limit before they are stored; False once it is reached.

    One conditional update checks and claims (turns_reserved and the stored message_count both leave room),
    so parallel requests cannot all pass a check of the same stale count. Counted apart from message_count,
    which stays the sum of the stored messages."""
    room = limit - turns
    if room < 0:
        return False
    claimed = Conversation.objects.filter(pk=conversation.pk, turns_reserved__lte=room, message_count__lte=room).update(
        turns_reserved=F("turns_reserved") + turns
    )
    return bool(claimed)


def conversation_turns_release(*, conversation: Conversation, turns: int) -> None:
    """Give back turns claimed by a request that stored nothing."""
    if turns <= 0:
        return
    try:
        Conversation.objects.filter(pk=conversation.pk, turns_reserved__gte=turns).update(
            turns_reserved=F("turns_reserved") - turns
        )
    except (DatabaseError, PyMongoError) as exc:
        # The failure that got us here is usually the database itself; report that one, not this.
        logger.warning("could not release %d turns of conversation %s: %s", turns, conversation.pk, exc)


def _usage_rollups_add(*, conversation: Conversation, messages: Sequence[Message]) -> None:
    models_used = {rollups.usage_model_key(m.model, m.role) for m in messages}
    new_pks = [m.pk for m in messages]
    # A model counts a conversation once: did the conversation use it before these messages?
    # One EXISTS (LIMIT 1) per model, usually one or two: a DISTINCT over the conversation's messages
    # grew with the conversation (measured by `make bench`).
    seen_models = {
        model
        for model in models_used
        if Message.objects.filter(usage_model_filter(model), conversation=conversation).exclude(pk__in=new_pks).exists()
    }
    first_client_model = _first_client_model(conversation=conversation, messages=messages, new_pks=new_pks)
    day = rollups.utc_day(conversation.created_at)
    for model in sorted(models_used):
        of_model = [m for m in messages if rollups.usage_model_key(m.model, m.role) == model]
        client = [m for m in of_model if m.origin == MessageOrigin.CLIENT]
        _rollup_add(
            DailyUsageRollup,
            key={"day": day, "source": conversation.source, "model": model},
            conversations=0 if model in seen_models else 1,
            **_usage_amounts(of_model),
            client_conversations=1 if model == first_client_model else 0,
            **{f"client_{name}": value for name, value in _usage_amounts(client).items()},
        )


def _usage_amounts(messages: Sequence[Message]) -> dict[str, int]:
    return {
        "messages": len(messages),
        "input_tokens": sum(m.input_tokens for m in messages),
        "output_tokens": sum(m.output_tokens for m in messages),
        "cache_read_tokens": sum(m.cache_read_tokens for m in messages),
        "cache_write_tokens": sum(m.cache_write_tokens for m in messages),
        "cost_micros": sum(m.cost_micros for m in messages),
    }


def _first_client_model(*, conversation: Conversation, messages: Sequence[Message], new_pks: list[Any]) -> str | None:
    """The model of the conversation's first widget-reported turn, if it is among `messages`.

    A conversation counts once in the client share (client_conversations), on the model of that turn,
    so the share sums over models to exactly the conversations the drill-down lists."""
    # One call's turns share one timestamp, so "first" is the earliest model name among them, exactly as
    # rollups_rebuild picks it (earliest turn, then model name).
    client_models = [m.model for m in messages if m.origin == MessageOrigin.CLIENT]
    if not client_models:
        return None
    earlier = Message.objects.filter(conversation=conversation, origin=MessageOrigin.CLIENT).exclude(pk__in=new_pks)
    return None if earlier.exists() else min(client_models)


def conversation_recount(*, conversation: Conversation) -> Conversation:
    """Recompute counters and cost from the stored messages (repairs drift after an outage)."""
    totals = Message.objects.filter(conversation=conversation).aggregate(**message_usage_sums())
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


def message_log_once(
    *,
    conversation: Conversation,
    key: str,
    fingerprint: str,
    turns: Sequence[Turn],
    render: Callable[[list[Message]], Any],
    **options: Any,
) -> tuple[Any, IdempotencyRecord | None]:
    """message_log at most once per (conversation, Idempotency-Key), all or nothing where the database allows.

    Returns (response body, None) when this request logged the turns, or (None, the existing record)
    when the key was already used: the caller replays its response, or answers 409 while it runs.
    `render(messages)` builds the response body, which is stored in the same transaction as the turns,
    so a key is never marked done without its turns, nor turns stored under a key left running.

    SQLite: claim, turns, counters and stored response are one IMMEDIATE transaction: one write lock
    per request, and a failure (database gone mid-request) leaves nothing behind. MongoDB: the claim
    comes first, on its own (a duplicate-key error would abort a transaction), then the rest runs in a
    transaction on a replica set; on a standalone server there are no transactions (README).
    """
    messages = messages_build(conversation=conversation, turns=turns, is_escalation=options.get("is_escalation", False))
    claim_first = connection.vendor == "mongodb"
    record: IdempotencyRecord | None = None
    if claim_first:
        record, first = idempotency_claim(
            conversation=conversation, key=key, fingerprint=fingerprint, take_over_stale=True
        )
        if not first:
            return None, record
    try:
        with write_transaction():
            if not claim_first:
                record, first = idempotency_claim(
                    conversation=conversation, key=key, fingerprint=fingerprint, take_over_stale=True
                )
                if not first:
                    return None, record
            messages = messages_store(conversation=conversation, messages=messages, **options)
            body = render(messages)
            idempotency_complete(record=record, response=body)
    except BaseException:
        if claim_first and record is not None:
            idempotency_release(record=record)
        raise
    return body, None


def writes_are_atomic() -> bool:
    """Whether write_transaction() really is all or nothing on this database."""
    return connection.vendor != "mongodb" or bool(connection.features._supports_transactions)


@contextmanager
def write_transaction() -> Iterator[None]:
    """All or nothing: a transaction on SQLite, and on MongoDB when the server is a replica set.

    django.db.transaction.atomic() is a no-op on django-mongodb-backend; its own atomic() needs a
    replica set (or sharded cluster), so a standalone MongoDB server gets no transaction at all.
    """
    if connection.vendor != "mongodb":
        with transaction.atomic():
            yield
    elif writes_are_atomic():
        from django_mongodb_backend.transaction import atomic as mongo_atomic

        try:
            with mongo_atomic():
                yield
        except BaseException:
            # The backend ends its session only on DatabaseError; a driver error (the server gone
            # during commit) would leave the dead session on this thread's connection, and the
            # next request would run inside it.
            if connection.session is not None:
                with suppress(Exception):
                    connection.session.end_session()
                connection.session = None
            raise
    else:
        yield


# --- Daily rollups ---------------------------------------------------------------------------
def _rollup_add(model: type[Model], *, key: dict[str, Any], **amounts: int) -> None:
    """Add `amounts` to the rollup row for `key`, creating it if needed; safe under concurrent writers.

    The row usually exists, so the cheap path is one F() update. A missing row is created inside a
    savepoint; if another writer created it first the unique constraint refuses ours and we update.
    """
    amounts = {name: value for name, value in amounts.items() if value}
    if not amounts:
        return
    if connection.vendor == "mongodb" and connection.in_atomic_block_mongo:
        # A rollup row is shared by every conversation of its day: inside MongoDB transactions two
        # writers updating it would abort each other (WriteConflict), so it is updated right after
        # the commit instead. A crash in between leaves it one turn short (`rebuild_rollups`).
        connection.on_commit(lambda: _rollup_add(model, key=key, **amounts))
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


def _usage_rebuild_batch(
    usage: defaultdict[tuple[date, str, str], list[int]], where: dict[Any, tuple[date, str]]
) -> int:
    """Add one batch of conversations' messages to `usage` (USAGE_COLUMNS, then CLIENT_COLUMNS); returns turns seen."""
    per_model = (
        Message.objects.filter(conversation_id__in=list(where))
        .values("conversation_id", "model", "role", "origin")
        .annotate(**message_usage_sums(), first=Min("created_at"))
    )
    seen = 0
    counted: set[tuple[Any, str]] = set()
    first_client: dict[Any, tuple[Any, str]] = {}
    offset = len(USAGE_COLUMNS)
    for row in per_model:
        conversation_id, model = row["conversation_id"], rollups.usage_model_key(row["model"], row["role"])
        day, source = where[conversation_id]
        totals = usage[(day, source, model)]
        new_model = (conversation_id, model) not in counted
        counted.add((conversation_id, model))
        figures = (int(new_model), row["n"], row["inp"], row["out"], row["cr"], row["cw"], row["cost"])
        for index, value in enumerate(figures):
            totals[index] += value or 0
        if row["origin"] == MessageOrigin.CLIENT:
            for index, value in enumerate(figures[1:], start=offset + 1):
                totals[index] += value or 0
            candidate = (row["first"], model)
            if conversation_id not in first_client or candidate < first_client[conversation_id]:
                first_client[conversation_id] = candidate
        seen += row["n"]
    for conversation_id, (_first, model) in first_client.items():
        day, source = where[conversation_id]
        usage[(day, source, model)][offset] += 1
    return seen


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
    columns = (*USAGE_COLUMNS, *CLIENT_COLUMNS)
    usage: defaultdict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0] * len(columns))
    done = messages_seen = 0
    for rows in _batched_by_pk(
        Conversation.objects.all(), fields=(*STATE_FIELDS, "question_key", "summary"), batch_size=batch_size
    ):
        where: dict[Any, tuple[date, str]] = {}
        fresh_keys = _question_keys_refresh(rows)
        for pk, *values, question_key, _summary in rows:
            question_key = fresh_keys.get(pk, question_key)
            key = rollups.state_key(**dict(zip(STATE_FIELDS, values, strict=True)))
            state[tuple(key.as_filter().values())] += 1
            if key.close_bucket != rollups.NO_BUCKET:
                closes[(key.day, key.close_bucket)] += 1
            where[pk] = (key.day, key.source)
            if question_key:
                questions[(key.day, question_key)] += 1
        messages_seen += _usage_rebuild_batch(usage, where)
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
        DailyUsageRollup(day=day, source=source, model=model, **dict(zip(columns, values, strict=True)))
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


def _question_keys_refresh(rows: list[tuple[Any, ...]]) -> dict[Any, str]:
    """Recompute the question keys of a batch (pk first, question_key and summary last) with today's
    pricing.normalise_question, store those that changed, and return them by pk.

    Keys written by an older normalisation (say "i can t log in") are regrouped by the next rebuild.
    The summary is the whole first message unless it was cut at 255: those read the message itself.
    """
    changed: dict[Any, str] = {}
    for pk, *_values, question_key, summary in rows:
        if not summary:
            continue
        text = summary
        if len(summary) >= 255:
            first = Message.objects.filter(conversation_id=pk, role=Role.USER).order_by("created_at", "pk").first()
            text = first.content if first is not None else summary
        key = pricing.normalise_question(text)
        if key != question_key:
            changed[pk] = key
    for pk, key in changed.items():
        Conversation.objects.filter(pk=pk).update(question_key=key)
    return changed


# --- Repricing -------------------------------------------------------------------------------
def _price_resolver(*, model: str) -> Callable[[datetime], tuple[ModelPrice | None, bool]]:
    """price_resolve for many moments with two queries in all: the model's rows and the default's."""

    def rows_for(name: str) -> list[ModelPrice]:
        rows = ModelPrice.objects.filter(model=name).order_by("effective_from")
        return [row for row in rows if pricing.price_usable(row)]

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
    client_delta: Counter[Any] = Counter()
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
        "origin",
    )
    for rows in _batched_by_pk(messages, fields=fields, batch_size=batch_size):
        for pk, conversation_id, created_at, inp, out, cr, cw, cw1h, cost, price_id, fallback, origin in rows:
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
            if origin == MessageOrigin.CLIENT:
                client_delta[conversation_id] += new_cost - cost
            if not dry_run:
                Message.objects.filter(pk=pk).update(
                    cost_micros=new_cost, price_id=new_price_id, price_fallback=new_fallback
                )
        done += len(rows)
        if progress is not None:
            progress(done, total)

    moved = {pk: delta for pk, delta in conversation_delta.items() if delta or client_delta[pk]}
    if not dry_run and moved:
        owners = {
            pk: (rollups.utc_day(created_at), source)
            for pk, created_at, source in Conversation.objects.filter(pk__in=list(moved)).values_list(
                "pk", "created_at", "source"
            )
        }
        usage_delta: Counter[tuple[date, str]] = Counter()
        usage_client_delta: Counter[tuple[date, str]] = Counter()
        for pk, delta in moved.items():
            Conversation.objects.filter(pk=pk).update(cost_micros=F("cost_micros") + delta)
            if pk in owners:
                usage_delta[owners[pk]] += delta
                usage_client_delta[owners[pk]] += client_delta[pk]
        for (day, source), delta in usage_delta.items():
            _rollup_add(
                DailyUsageRollup,
                key={"day": day, "source": source, "model": model},
                cost_micros=delta,
                client_cost_micros=usage_client_delta[(day, source)],
            )
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


class IdempotencyLeaseLost(Exception):
    """Another request took over this Idempotency-Key (ours looked dead); this one must not store its turns."""


def idempotency_claim(
    *, conversation: Conversation, key: str, fingerprint: str, take_over_stale: bool = False
) -> tuple[IdempotencyRecord, bool]:
    """Reserve `key` for this conversation. Returns (record, True) for the first request, else the existing one.

    With `take_over_stale` (message_log_once only): a claim still unfinished after
    SUPPORT_IDEMPOTENCY_LEASE_S belongs to a request that died (the database went away under it and
    the claim could not even be released). Where the turns and the stored response are written in
    one transaction, such a claim proves nothing of that request was stored, so the retry takes it
    over instead of answering 409 for ever. Its created_at is the lease. The chat proxy stores the
    customer's turn before Claude answers, so it must not take over.
    """
    try:
        with transaction.atomic():  # a savepoint, so the IntegrityError leaves an outer transaction usable
            record = IdempotencyRecord.objects.create(conversation=conversation, key=key, fingerprint=fingerprint)
        return record, True
    except IntegrityError:
        existing = IdempotencyRecord.objects.get(conversation=conversation, key=key)
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SUPPORT_IDEMPOTENCY_LEASE_S)
    if take_over_stale and existing.response is None and existing.fingerprint == fingerprint:
        if existing.created_at < stale and writes_are_atomic():
            # Compare-and-set on the old lease: of several retries, exactly one takes it over.
            taken = IdempotencyRecord.objects.filter(
                pk=existing.pk, response__isnull=True, created_at=existing.created_at
            ).update(created_at=now)
            if taken:
                existing.created_at = now
                return existing, True
    return existing, False


def idempotency_complete(*, record: IdempotencyRecord, response: Any) -> None:
    """Store the answer to replay; refuses (IdempotencyLeaseLost) if the claim was taken over meanwhile."""
    done = IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True, created_at=record.created_at).update(
        response=response
    )
    if not done:
        raise IdempotencyLeaseLost(record.key)


def idempotency_turn_attach(*, record: IdempotencyRecord, user_message: Message) -> None:
    """Note the customer's turn a chat key stored: from now on the key is never released (see idempotency_resume)."""
    IdempotencyRecord.objects.filter(pk=record.pk).update(user_message=user_message)
    record.user_message = user_message


#: A lease start long past: the claim counts as dead at once, so the client's retry resumes it.
_ABANDONED_AT = datetime(2000, 1, 1, tzinfo=UTC)


def idempotency_abandon(*, record: IdempotencyRecord) -> None:
    """Give up a chat claim whose reply could not be stored, so a same-key retry resumes it without waiting
    for the lease. The customer's turn stays stored and the key stays taken. When the database refuses even
    this, a note in the shared cache does the same; failing both, the lease runs out on its own."""
    try:
        IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True, created_at=record.created_at).update(
            created_at=_ABANDONED_AT
        )
        return
    except (DatabaseError, PyMongoError) as exc:
        logger.warning("could not mark idempotency key %s for resuming: %s", record.key, exc)
    try:
        cache.set(_abandoned_cache_key(record), True, settings.SUPPORT_IDEMPOTENCY_LEASE_S)
    except Exception as exc:  # noqa: BLE001 - the lease is the last resort
        logger.warning("could not note idempotency key %s for resuming: %s", record.key, exc)


def _abandoned_cache_key(record: IdempotencyRecord) -> str:
    return f"idempotency-abandoned:{record.pk}"


def idempotency_resume(*, record: IdempotencyRecord, fingerprint: str) -> bool:
    """Take over a chat claim whose customer turn is stored but whose request died or gave up (see
    idempotency_abandon; or its lease ran out). True for exactly one of several concurrent retries."""
    if record.response is not None or record.user_message_id is None or record.fingerprint != fingerprint:
        return False
    stale = record.created_at < timezone.now() - timedelta(seconds=settings.SUPPORT_IDEMPOTENCY_LEASE_S)
    if not stale:
        try:
            stale = bool(cache.get(_abandoned_cache_key(record)))
        except Exception:  # noqa: BLE001 - without the note, the lease decides
            stale = False
    if not stale:
        return False
    now = timezone.now()
    # Compare-and-set on the old lease: of several retries, exactly one resumes.
    taken = IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True, created_at=record.created_at).update(
        created_at=now
    )
    if taken:
        record.created_at = now
        with suppress(Exception):  # the note is spent; a later failure writes a new one
            cache.delete(_abandoned_cache_key(record))
    return bool(taken)


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget a claim whose request failed, so the client's retry runs it again."""
    try:
        # Only an unfinished claim still ours: if the commit went through although the client saw an
        # error (the database died before answering), the stored response must stay for the replay.
        IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True, created_at=record.created_at).delete()
    except (DatabaseError, PyMongoError) as exc:
        # The failure that got us here is usually the database itself; report that one, not this.
        logger.warning("could not release idempotency key %s: %s", record.key, exc)
