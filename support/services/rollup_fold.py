"""The rollup fold: stored turns join the usage and grounding rollups off the request path (issue 13).

A request that stores turns marks them `rollup_pending` and asks for a fold once it commits
(rollups_fold_soon). The fold, on the task queue, reads the pending turns a batch at a time through their
index, adds them to the daily usage and grounding rows, and clears the mark, in one write transaction.
Whether a conversation already counts for a model (or in the client share, or as ungrounded) is kept on
the conversation (`rollup_marks`), so neither the request nor the fold reads a conversation's older turns:
the cost of a turn does not grow with the conversation.

The cost of a turn on its conversation's state row (DailyConversationRollup, the cost per outcome) is
added here too, to the row the turn's request counted it in (Message.rollup_state, written by
conversation_counters_add under its guard on the state).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import Model

from support import db, rollups
from support.models import (
    Conversation,
    DailyConversationRollup,
    DailyGroundingRollup,
    DailyModelUsageRollup,
    DailyUsageRollup,
    Message,
    MessageOrigin,
)
from support.services.rollups import _rollup_add, _usage_amounts

logger = logging.getLogger(__name__)

FOLD_BATCH = 500
#: How long a web process waits before asking for another fold: turns stored meanwhile join the one queued.
FOLD_DELAY_S = 1.0
CLIENT_MARK = "client"
UNGROUNDED_MARK = "ungrounded"
_FIELDS = (
    "conversation_id",
    "model",
    "role",
    "origin",
    "is_ungrounded",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "created_at",
    "rollup_state",
)


def model_mark(model_key: str) -> str:
    return f"model:{model_key}"


def rollup_marks_rebuild() -> int:
    """Set every conversation's `rollup_marks` from its stored turns, as rollups_rebuild counts them (which
    calls this); returns how many conversations changed. One grouped read of the messages."""
    found: defaultdict[Any, set[str]] = defaultdict(set)
    rows = Message.objects.values_list("conversation_id", "model", "role", "origin", "is_ungrounded").distinct()
    for conversation_id, model, role, origin, ungrounded in rows.iterator(chunk_size=2000):
        found[conversation_id].add(model_mark(rollups.usage_model_key(model, role)))
        if origin == MessageOrigin.CLIENT:
            found[conversation_id].add(CLIENT_MARK)
        if ungrounded:
            found[conversation_id].add(UNGROUNDED_MARK)
    changed = 0
    for pk, marks in Conversation.objects.values_list("pk", "rollup_marks").iterator(chunk_size=2000):
        wanted = sorted(found.get(pk, ()))
        if wanted != sorted(marks or []):
            Conversation.objects.filter(pk=pk).update(rollup_marks=wanted)
            changed += 1
    return changed


class _FoldTally:
    """The rollup increments of one batch, summed by row, and the conversations' new marks."""

    def __init__(self) -> None:
        self.rows: defaultdict[tuple[type[Model], tuple[tuple[str, Any], ...]], Counter[str]] = defaultdict(Counter)
        self.marks: dict[Any, list[str]] = {}

    def add(self, conversation: Conversation, messages: list[Message]) -> None:
        marks = set(conversation.rollup_marks or [])
        before = set(marks)
        venue = rollups.venue_key(conversation)
        day = rollups.utc_day(conversation.created_at)
        by_model: defaultdict[str, list[Message]] = defaultdict(list)
        for message in messages:
            by_model[rollups.usage_model_key(message.model, message.role)].append(message)
        first_client = self._first_client(messages, marks)
        for model, of_model in sorted(by_model.items()):
            client = [m for m in of_model if m.origin == MessageOrigin.CLIENT]
            amounts = Counter(_usage_amounts(of_model))
            amounts.update({f"client_{name}": value for name, value in _usage_amounts(client).items()})
            amounts["conversations"] = int(model_mark(model) not in marks)
            amounts["client_conversations"] = int(model == first_client)
            marks.add(model_mark(model))
            key = {"day": day, "source": conversation.source, "model": model, **venue}
            self.rows[(DailyUsageRollup, tuple(sorted(key.items())))].update(amounts)
            self.rows[(DailyModelUsageRollup, (("day", day), ("model", model)))].update(amounts)
        if any(m.is_ungrounded for m in messages) and UNGROUNDED_MARK not in marks:
            marks.add(UNGROUNDED_MARK)
            key = {"day": day, "source": conversation.source, **venue}
            self.rows[(DailyGroundingRollup, tuple(sorted(key.items())))]["ungrounded_conversations"] += 1
        if marks != before:
            self.marks[conversation.pk] = sorted(marks)
        for message in messages:
            if message.rollup_state and message.cost_micros:
                row = {**message.rollup_state, "day": date.fromisoformat(message.rollup_state["day"])}
                self.rows[(DailyConversationRollup, tuple(sorted(row.items())))]["cost_micros"] += message.cost_micros

    @staticmethod
    def _first_client(messages: list[Message], marks: set[str]) -> str | None:
        """The model of the conversation's first widget-reported turn, if it is among `messages` (the same
        pick as rollups_rebuild: earliest turn, then model name); the client share counts it once."""
        if CLIENT_MARK in marks:
            return None
        client = [(m.created_at, rollups.usage_model_key(m.model, m.role)) for m in messages if m.origin == "client"]
        if not client:
            return None
        marks.add(CLIENT_MARK)
        return min(client)[1]


def _fold_batch(*, batch_size: int) -> int:
    """Fold the oldest `batch_size` pending turns; returns how many there were."""
    with db.write_transaction():
        pending = list(Message.objects.filter(rollup_pending=True).order_by("pk").only(*_FIELDS)[:batch_size])
        if not pending:
            return 0
        grouped: defaultdict[Any, list[Message]] = defaultdict(list)
        for message in pending:
            grouped[message.conversation_id].append(message)
        owners = Conversation.objects.only("created_at", "source", "business_id", "audience", "rollup_marks")
        tally = _FoldTally()
        for conversation in owners.filter(pk__in=list(grouped)):
            tally.add(conversation, grouped[conversation.pk])
        for (table, key), amounts in tally.rows.items():
            _rollup_add(table, key=dict(key), **amounts)
        for pk, marks in tally.marks.items():
            Conversation.objects.filter(pk=pk).update(rollup_marks=marks)
        Message.objects.filter(pk__in=[m.pk for m in pending]).update(rollup_pending=False, rollup_state=None)
    return len(pending)


#: How long a fold waits for another one to finish before leaving the turns to the next.
FOLD_LOCK_WAIT_S = 10.0


#: A fold holds its lock this long at most: the lock of a process that died folding lapses after it.
FOLD_LEASE_S = 120.0
_LOCK_KEY = "rollups-fold-lock"


def _lock_take(huey: Any) -> bool:
    """Take the fold lock in the task queue's storage (atomic put-if-empty on Redis and SQLite); a lock whose
    lease ran out belongs to a process that died, and is taken over."""
    now = time.time()
    if huey.put_if_empty(_LOCK_KEY, now + FOLD_LEASE_S):
        return True
    held_until = huey.get(_LOCK_KEY, peek=True)
    if held_until is not None and float(held_until) < now:
        huey.delete(_LOCK_KEY)
        return bool(huey.put_if_empty(_LOCK_KEY, now + FOLD_LEASE_S))
    return False


@contextmanager
def _fold_lock() -> Iterator[bool]:
    """One fold at a time across processes: two folds of the same turns would count them twice where the
    database has no transactions (a standalone MongoDB). True when held; waits up to FOLD_LOCK_WAIT_S."""
    from huey.contrib.djhuey import HUEY

    deadline = time.monotonic() + FOLD_LOCK_WAIT_S
    while not _lock_take(HUEY):
        if time.monotonic() > deadline:
            yield False
            return
        time.sleep(0.01)
    try:
        yield True
    finally:
        HUEY.delete(_LOCK_KEY)


def rollups_fold(*, batch_size: int = FOLD_BATCH) -> int:
    """Add every pending turn to the usage and grounding rollups; returns how many were added (0 when another
    fold held the lock all along: the next fold adds them)."""
    folded = 0
    with _fold_lock() as held:
        if not held:
            return 0
        while True:
            count = _fold_batch(batch_size=batch_size)
            folded += count
            if count < batch_size:
                return folded


_soon_lock = threading.Lock()
_soon_next = 0.0


def rollups_fold_soon() -> None:
    """Once this transaction commits, ask the task queue for a fold in about FOLD_DELAY_S, at most once per
    FOLD_DELAY_S per process: a busy worker's turns share one fold. Never raises: the minute's periodic fold
    catches up on a missed one. With the queue inline (HUEY_IMMEDIATE, the tests) the fold runs now, in the
    caller's transaction, so the rollups are current when the request ends."""
    from support import tasks

    if tasks.HUEY.immediate:
        if db.in_mongodb_transaction():
            # Folding inside it would write turns other open transactions fold too (WriteConflict).
            transaction.on_commit(rollups_fold)
        else:
            rollups_fold()
        return
    transaction.on_commit(_fold_schedule)


def _fold_schedule() -> None:
    global _soon_next
    from support import tasks

    now = time.monotonic()
    with _soon_lock:
        if now < _soon_next:
            return
        _soon_next = now + FOLD_DELAY_S
    try:
        tasks.rollups_fold_task.schedule(delay=FOLD_DELAY_S)
    except Exception:
        logger.warning("could not queue the rollup fold; the periodic one will run it", exc_info=True)
