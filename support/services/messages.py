"""Writes of turns: build and price them, store them with the conversation's counters, claim turns under
the turn limit, and log a request's turns at most once per Idempotency-Key."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from support import db, outcomes, pricing, rollups
from support.models import (
    Conversation,
    DailyConversationRollup,
    DailyQuestionRollup,
    EscalationReason,
    IdempotencyRecord,
    Message,
    MessageOrigin,
    ModelPrice,
    Role,
)
from support.rollups import STATE_FIELDS
from support.selectors import message_usage_sums
from support.services import idempotency
from support.services.conversations import (
    GUARDED_TOO,
    TRANSITION_ATTEMPTS,
    WIDGET,
    ConversationConflict,
    conversation_escalate,
    conversation_outcome_follow,
    conversation_outcome_refresh,
)
from support.services.poll import poll_version_bump
from support.services.prices import prices_resolve
from support.services.rollup_fold import rollups_fold_soon
from support.services.rollups import _rollup_add

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Turn(pricing.Usage):
    """One turn to store, with its token usage (the fields of pricing.Usage) when Claude wrote it."""

    role: str
    content: str
    model: str = ""
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
    #: The staff user who wrote an agent turn (Role.AGENT); None for every other turn.
    author: Any = None
    #: Citations (issue 14): the articles the reply cited, and whether it answered a product question uncited.
    cited_article_ids: tuple[str, ...] = ()
    is_ungrounded: bool = False


class StoreOptions(TypedDict, total=False):
    """messages_store()'s options, which message_log() passes on unchanged."""

    is_escalation: bool
    escalation_reason: str
    escalation_detail: str
    actor: Any
    actor_label: str
    refresh: bool
    counters: bool
    turn_limit: int | None


def message_log(*, conversation: Conversation, turns: Sequence[Turn], **options: Unpack[StoreOptions]) -> list[Message]:
    """Store turns, price them, and add them to the conversation's counters without lost updates.

    For callers on a hot path: `refresh=False` skips re-reading the conversation afterwards (its counters
    stay as they were in memory; escalation fields are still updated), and `counters=False` leaves the
    counters and usage rollups to a later conversation_counters_add(messages=...) call."""
    is_escalation = options.get("is_escalation", False)
    messages = messages_build(conversation=conversation, turns=turns, is_escalation=is_escalation)
    return messages_store(conversation=conversation, messages=messages, **options)


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
        messages.append(
            Message(
                conversation=conversation,
                role=turn.role,
                content=turn.content,
                origin=turn.origin,
                author=turn.author,
                model=model,
                input_tokens=turn.input_tokens,
                output_tokens=turn.output_tokens,
                cache_read_tokens=turn.cache_read_tokens,
                cache_write_tokens=turn.cache_write_tokens,
                cache_write_1h_tokens=turn.cache_write_1h_tokens,
                cost_micros=pricing.cost_micros(price, turn),
                price=price,
                price_fallback=fallback,
                is_escalation=is_escalation and turn.role == Role.ASSISTANT,
                is_partial=turn.is_partial,
                is_truncated=turn.is_truncated,
                latency_ms=turn.latency_ms,
                first_token_ms=turn.first_token_ms,
                cited_article_ids=list(turn.cited_article_ids),
                is_ungrounded=turn.is_ungrounded,
                rollup_pending=True,  # the usage rollups take it off the request path (rollup_fold)
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
    """Insert messages_build()'s rows and add them to the conversation's counters; the usage rollups follow
    off the request path (support.services.rollup_fold).

    With `turn_limit` the turns are first claimed under it (TurnLimitReached when there is no room), in
    the same transaction as the insert: a request that fails after the claim gives its turns back. With
    `counters` the claim, the counters and the outcome's inputs are one update of the conversation, and the
    conversation in memory is brought up to date with it (so `refresh=False` answers without a read)."""
    # savepoint=False: inside message_log_once's transaction a failure rolls the whole request back.
    with transaction.atomic(savepoint=False):
        if counters:
            # Before the insert, so the cost's state row travels with the turns to the fold.
            conversation_counters_add(
                conversation=conversation, messages=messages, turn_limit=turn_limit, state_row_later=True
            )
        elif turn_limit is not None and not conversation_turns_reserve(
            conversation=conversation, turns=len(messages), limit=turn_limit
        ):
            raise TurnLimitReached(conversation.pk)
        try:
            # One INSERT for the turns, prepared once; both databases hand the new primary keys back.
            db.rows_insert(Message, messages)
        except BaseException:
            if not db.rolls_back_with_failure():
                _counters_take_back(conversation=conversation, messages=messages, counted=counters, limit=turn_limit)
            raise
        poll_version_bump(conversation_id=conversation.pk)  # open widgets' next poll is a 200 with these
        rollups_fold_soon()
        _question_claim(conversation=conversation, messages=messages)
        if not counters:
            _outcome_inputs_add(conversation=conversation, messages=messages)
    _outcome_follow(conversation=conversation, options=locals(), known=counters)
    if refresh:
        conversation.refresh_from_db()
    return messages


def _outcome_follow(*, conversation: Conversation, options: dict[str, Any], known: bool) -> None:
    """Escalate, or recompute the outcome after new turns (the transition recomputes it too). `known`: the
    conversation in memory is the state the counters' guarded update wrote on, so no read is needed."""
    if options["is_escalation"]:
        conversation_escalate(
            conversation=conversation,
            reason=options["escalation_reason"],
            detail=options["escalation_detail"],
            actor=options["actor"],
            actor_label=options["actor_label"],
        )
    elif known:
        conversation_outcome_follow(conversation=conversation, actor_label=options["actor_label"])
    else:
        conversation_outcome_refresh(conversation=conversation, actor_label=options["actor_label"])


def _question_claim(*, conversation: Conversation, messages: Sequence[Message]) -> None:
    """The conversation's first question becomes its summary and counts in the question rollups, once."""
    first_user = next((m for m in messages if m.role == Role.USER), None)
    if first_user is None or conversation.summary:
        return
    question_key = rollups.normalise_question(first_user.content)
    # Guarded on an empty summary: only the first writer counts the question.
    claimed = Conversation.objects.filter(pk=conversation.pk, summary="").update(
        summary=first_user.content[:255], question_key=question_key
    )
    if claimed:
        conversation.summary, conversation.question_key = first_user.content[:255], question_key
    if claimed and question_key:
        _rollup_add(
            DailyQuestionRollup,
            key={
                "day": rollups.utc_day(conversation.created_at),
                "question_key": question_key,
                **rollups.venue_key(conversation),
            },
            conversations=1,
        )


def _usage_added(messages: Sequence[Message]) -> dict[str, int]:
    return {
        "message_count": len(messages),
        "total_input_tokens": sum(m.input_tokens for m in messages),
        "total_output_tokens": sum(m.output_tokens for m in messages),
        "total_cache_read_tokens": sum(m.cache_read_tokens for m in messages),
        "total_cache_write_tokens": sum(m.cache_write_tokens for m in messages),
        "cost_micros": sum(m.cost_micros for m in messages),
    }


def _usage_increments(messages: Sequence[Message], sign: int = 1) -> dict[str, Any]:
    return {name: F(name) + sign * value for name, value in _usage_added(messages).items()}


def conversation_counters_add(
    *,
    conversation: Conversation,
    messages: Sequence[Message],
    turn_limit: int | None = None,
    state_row_later: bool = False,
) -> None:
    """Add messages to the conversation's counters, tokens and cost, their cost to its state row (the cost
    per outcome), and (with `turn_limit`) claim their turns under it, in one update of the conversation.

    With `state_row_later` (turns not inserted yet) the state row is written on the turns (rollup_state)
    for the fold to add the cost to, instead of now: a transition moves the conversation's whole cost
    between rows, and additions commute, so the row ends the same.

    The outcome's inputs (substantive question or answer, the latest turn) ride along. The update is guarded
    on the conversation's state, so the cost lands on the row it is counted in; F() increments are applied
    by the database, so concurrent loggers never overwrite each other. TurnLimitReached when there is no room."""
    cost = sum(m.cost_micros for m in messages)
    flags, latest = _outcome_flags(messages)
    room = {} if turn_limit is None else _turn_room(turns=len(messages), limit=turn_limit)
    added = {**_usage_added(messages), **({} if turn_limit is None else {"turns_reserved": len(messages)})}
    stamps = {"updated_at": max((m.created_at for m in messages), default=timezone.now())}
    for attempt in range(TRANSITION_ATTEMPTS):
        if attempt:
            db.retry_spread(attempt)
            conversation.refresh_from_db(fields=[*STATE_FIELDS, *GUARDED_TOO, "message_count", "turns_reserved"])
            if turn_limit is not None and not _has_room(conversation, turns=len(messages), limit=turn_limit):
                raise TurnLimitReached(conversation.pk)
        guard = {name: getattr(conversation, name) for name in STATE_FIELDS}
        # Inside messages_store's transaction no savepoint (a failure rolls the request back); alone, its own.
        with transaction.atomic(savepoint=False):
            updated = db.row_update(
                Conversation,
                pk=conversation.pk,
                where=guard,
                at_most=room,
                add=added,
                assign={**flags, **stamps},
                raise_to={} if latest is None else {"last_turn_at": latest},
            )
            if updated:
                _state_row_add(conversation=conversation, messages=messages, cost=cost, later=state_row_later)
                _counters_remember(conversation=conversation, messages=messages, claimed=turn_limit is not None)
                return
    raise ConversationConflict(conversation.pk)


def _state_row_add(*, conversation: Conversation, messages: Sequence[Message], cost: int, later: bool) -> None:
    if not cost:
        return
    row = rollups.state_key_of(conversation).as_filter()
    if not later:
        _rollup_add(DailyConversationRollup, key=row, cost_micros=cost)
        return
    stamped = {**row, "day": row["day"].isoformat()}  # type: ignore[attr-defined]  # a date
    for message in messages:
        message.rollup_state = stamped if message.cost_micros else None


def _turn_room(*, turns: int, limit: int) -> dict[str, int]:
    room = limit - turns
    if room < 0:
        raise TurnLimitReached(None)
    return {"turns_reserved": room, "message_count": room}


def _has_room(conversation: Conversation, *, turns: int, limit: int) -> bool:
    return max(conversation.turns_reserved, conversation.message_count) + turns <= limit


def _counters_remember(*, conversation: Conversation, messages: Sequence[Message], claimed: bool) -> None:
    """The update just written, applied to the conversation in memory (the answer is rendered from it)."""
    conversation.message_count += len(messages)
    conversation.total_input_tokens += sum(m.input_tokens for m in messages)
    conversation.total_output_tokens += sum(m.output_tokens for m in messages)
    conversation.total_cache_read_tokens += sum(m.cache_read_tokens for m in messages)
    conversation.total_cache_write_tokens += sum(m.cache_write_tokens for m in messages)
    conversation.cost_micros += sum(m.cost_micros for m in messages)
    if claimed:
        conversation.turns_reserved += len(messages)
    _outcome_inputs_remember(conversation=conversation, messages=messages)


def _counters_take_back(
    *, conversation: Conversation, messages: Sequence[Message], counted: bool, limit: int | None
) -> None:
    """Undo the counters (and the turn claim) of turns whose insert failed where no rollback does it."""
    try:
        if counted:
            claim = {} if limit is None else {"turns_reserved": F("turns_reserved") - len(messages)}
            # The state row's share was to be added by the fold, with the turns that were never stored.
            Conversation.objects.filter(pk=conversation.pk).update(**_usage_increments(messages, -1), **claim)
        elif limit is not None:
            conversation_turns_release(conversation=conversation, turns=len(messages))
    except db.DATABASE_ERRORS as exc:
        # The failure that got us here is usually the database itself; report that one, not this.
        logger.warning("could not take back the counters of conversation %s: %s", conversation.pk, exc)


def _outcome_flags(messages: Sequence[Message]) -> tuple[dict[str, bool], Any]:
    """What the outcome rules read of new turns: a substantive question or answer (flags that only ever
    turn on), and the latest turn's time (only ever forward: a slower writer of an earlier turn must not
    pull the resolution window back), or None without turns."""
    flags: dict[str, bool] = {}
    if any(m.role == Role.USER and outcomes.is_substantive(m.content) for m in messages):
        flags["substantive_question"] = True
    if any(m.role == Role.ASSISTANT and outcomes.is_substantive(m.content) for m in messages):
        flags["substantive_answer"] = True
    return flags, max((m.created_at for m in messages), default=None)


def _outcome_inputs(messages: Sequence[Message]) -> dict[str, Any]:
    """_outcome_flags() as ORM update values."""
    found, latest = _outcome_flags(messages)
    flags: dict[str, Any] = dict(found)
    if latest is not None:
        flags["last_turn_at"] = Case(When(last_turn_at__gt=latest, then=F("last_turn_at")), default=Value(latest))
    return flags


def _outcome_inputs_remember(*, conversation: Conversation, messages: Sequence[Message]) -> None:
    flags, latest = _outcome_flags(messages)
    for name in flags:
        setattr(conversation, name, True)
    if latest is not None and (conversation.last_turn_at is None or conversation.last_turn_at < latest):
        conversation.last_turn_at = latest


def _outcome_inputs_add(*, conversation: Conversation, messages: Sequence[Message]) -> None:
    """The outcome's inputs of turns stored without their counters (the chat proxy adds those later)."""
    flags = _outcome_inputs(messages)
    if flags:
        Conversation.objects.filter(pk=conversation.pk).update(**flags)
    _outcome_inputs_remember(conversation=conversation, messages=messages)


class TurnLimitReached(Exception):
    """The conversation holds SUPPORT_CHAT_MAX_TURNS turns already (or they are claimed)."""


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
    except db.DATABASE_ERRORS as exc:
        # The failure that got us here is usually the database itself; report that one, not this.
        logger.warning("could not release %d turns of conversation %s: %s", turns, conversation.pk, exc)


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


@dataclass
class LoggedOnce:
    """message_log_once's answer: the stored turns when this request logged them (then `complete` the
    key with the body to replay), or None when the key was used already (`record` is the other's)."""

    claim: idempotency.IdempotencyClaim
    messages: list[Message] | None

    @property
    def record(self) -> IdempotencyRecord | None:
        return self.claim.record

    def complete(self, *, response: Any) -> None:
        self.claim.complete(response=response)


@contextmanager
def message_log_once(
    *, conversation: Conversation, key: str, fingerprint: str, turns: Sequence[Turn], **options: Unpack[StoreOptions]
) -> Iterator[LoggedOnce]:
    """message_log at most once per (conversation, Idempotency-Key), all or nothing where the database allows.

    The block gets the stored turns (or None when the key was used already: the caller replays its
    answer, or answers 409 while it runs), renders its answer and calls `complete(response=...)`: the
    answer is stored in the same transaction as the turns (services.idempotency_write says how).
    """
    messages = messages_build(conversation=conversation, turns=turns, is_escalation=options.get("is_escalation", False))
    with idempotency.idempotency_write(conversation=conversation, key=key, fingerprint=fingerprint) as claim:
        if not claim.first:
            yield LoggedOnce(claim=claim, messages=None)
            return
        stored = messages_store(conversation=conversation, messages=messages, **options)
        yield LoggedOnce(claim=claim, messages=stored)
