"""Writes to the daily rollup tables: add to a row, move a conversation between state rows, add a batch
of turns to the usage rows, and rebuild everything from conversations and messages."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Min, Model

from support import db, rollups
from support.models import (
    Conversation,
    DailyCloseRollup,
    DailyConversationRollup,
    DailyModelUsageRollup,
    DailyQuestionRollup,
    DailyUsageRollup,
    Message,
    MessageOrigin,
    Role,
)
from support.rollups import STATE_FIELDS
from support.selectors import CLIENT_COLUMNS, USAGE_COLUMNS, message_usage_sums

logger = logging.getLogger(__name__)


def _usage_amounts(messages: Sequence[Message]) -> dict[str, int]:
    return {
        "messages": len(messages),
        "input_tokens": sum(m.input_tokens for m in messages),
        "output_tokens": sum(m.output_tokens for m in messages),
        "cache_read_tokens": sum(m.cache_read_tokens for m in messages),
        "cache_write_tokens": sum(m.cache_write_tokens for m in messages),
        "cost_micros": sum(m.cost_micros for m in messages),
    }


def _rollup_add(model: type[Model], *, key: dict[str, Any], **amounts: int) -> None:
    """Add `amounts` to the rollup row for `key`, creating it if needed; safe under concurrent writers.

    The row usually exists, so the cheap path is one F() update. A missing row is created inside a
    savepoint; if another writer created it first the unique constraint refuses ours and we update.
    """
    amounts = {name: value for name, value in amounts.items() if value}
    if not amounts:
        return
    # A rollup row is shared by every conversation of its day: inside a MongoDB transaction the write
    # waits for the commit (db.shared_row_write says why).
    if db.shared_row_write(lambda: _rollup_add(model, key=key, **amounts)):
        return
    increments = {name: F(name) + value for name, value in amounts.items()}
    if model._default_manager.filter(**key).update(**increments):
        return
    try:
        with transaction.atomic():
            model._default_manager.create(**key, **amounts)
        return
    except IntegrityError:
        pass
    model._default_manager.filter(**key).update(**increments)


def rollup_state_move(*, old: rollups.StateKey | None, new: rollups.StateKey | None, cost_micros: int = 0) -> None:
    """Move one conversation (and its cost so far, on the state rows) from its old state rows to its new ones
    (either may be None)."""
    if old == new:
        return
    # Each conversation is in one state row and, once closed, one close row.
    for table, row_key in ((DailyConversationRollup, "as_filter"), (DailyCloseRollup, "close_filter")):
        old_row, new_row = (getattr(key, row_key)() if key else None for key in (old, new))
        if old_row == new_row:
            continue
        cost = {"cost_micros": cost_micros} if table is DailyConversationRollup else {}
        if old_row is not None:
            _rollup_add(table, key=old_row, conversations=-1, **{name: -value for name, value in cost.items()})
        if new_row is not None:
            _rollup_add(table, key=new_row, conversations=1, **cost)


def conversation_cost_shift(*, conversation_id: Any, delta: int, attempts: int = 8) -> None:
    """Change a stored conversation's cost by `delta` (a re-price) and its state row's cost with it.

    Compare-and-set on the state fields, so the cost lands on the row the conversation is counted in
    even while a transition moves it."""
    for _attempt in range(attempts):
        row = Conversation.objects.filter(pk=conversation_id).values(*STATE_FIELDS).first()
        if row is None:
            return
        with transaction.atomic():
            if Conversation.objects.filter(pk=conversation_id, **row).update(cost_micros=F("cost_micros") + delta):
                if delta:
                    key = rollups.state_key(**row).as_filter()
                    _rollup_add(DailyConversationRollup, key=key, cost_micros=delta)
                return
    raise RuntimeError(f"Conversation {conversation_id} kept changing under a re-price; run it again.")


@dataclass(frozen=True)
class RebuildResult:
    conversations: int
    messages: int
    rows: int
    #: Days whose rows were left as they were (keep_days): conversations of theirs were deleted.
    kept_days: int = 0


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


#: A usage row's key in a rebuild: day, source, business_id, audience (the conversation's), then the model.
UsageKey = tuple[date, str, str, str, str]
#: Where a conversation counts: day, source, business_id, audience.
Owner = tuple[date, str, str, str]


def _usage_rebuild_batch(usage: defaultdict[UsageKey, list[int]], where: dict[Any, Owner]) -> int:
    """Add one batch of conversations' messages to `usage` (USAGE_COLUMNS, then CLIENT_COLUMNS); returns turns seen."""
    # The annotations' names (message_usage_sums) are not in the plugin's row type, hence Mapping.
    per_model: Iterable[Mapping[str, Any]] = (
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
        totals = usage[(*where[conversation_id], model)]
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
        usage[(*where[conversation_id], model)][offset] += 1
    return seen


_USAGE_ROLLUP_COLUMNS = (*USAGE_COLUMNS, *CLIENT_COLUMNS)
_STATE_ROLLUP_NAMES = (
    "day",
    "source",
    "status",
    "escalated",
    "escalation_reason",
    "rating",
    "outcome",
    "business_id",
    "audience",
)
_VENUE = ("business_id", "audience")


@dataclass
class _RebuildTally:
    """The rollup rows a rebuild has counted so far, by key."""

    state: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    state_cost: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    closes: Counter[tuple[date, int, str, str]] = field(default_factory=Counter)
    questions: Counter[tuple[date, str, str, str]] = field(default_factory=Counter)
    usage: defaultdict[UsageKey, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(_USAGE_ROLLUP_COLUMNS))
    )

    def add_batch(self, rows: list[tuple[Any, ...]]) -> int:
        """Count one batch of conversations (pk, STATE_FIELDS, cost_micros, question_key, summary) and their messages;
        returns the turns seen."""
        where: dict[Any, Owner] = {}
        fresh_keys = _question_keys_refresh(rows)
        for pk, *values, cost, question_key, _summary in rows:
            question_key = fresh_keys.get(pk, question_key)
            key = rollups.state_key(**dict(zip(STATE_FIELDS, values, strict=True)))
            self.state[tuple(key.as_filter().values())] += 1
            self.state_cost[tuple(key.as_filter().values())] += cost or 0
            venue = (key.business_id, key.audience)
            if key.close_bucket != rollups.NO_BUCKET:
                self.closes[(key.day, key.close_bucket, *venue)] += 1
            where[pk] = (key.day, key.source, *venue)
            if question_key:
                self.questions[(key.day, question_key, *venue)] += 1
        return _usage_rebuild_batch(self.usage, where)

    def rows(self) -> list[tuple[type[Model], list[Any]]]:
        """The rows to write, by rollup table."""
        return [
            (
                DailyConversationRollup,
                [
                    DailyConversationRollup(
                        **dict(zip(_STATE_ROLLUP_NAMES, key, strict=True)),
                        conversations=n,
                        cost_micros=self.state_cost[key],
                    )
                    for key, n in self.state.items()
                ],
            ),
            (
                DailyCloseRollup,
                [
                    DailyCloseRollup(day=day, close_bucket=b, **dict(zip(_VENUE, venue, strict=True)), conversations=n)
                    for (day, b, *venue), n in self.closes.items()
                ],
            ),
            (
                DailyQuestionRollup,
                [
                    DailyQuestionRollup(
                        day=day, question_key=key, **dict(zip(_VENUE, venue, strict=True)), conversations=n
                    )
                    for (day, key, *venue), n in self.questions.items()
                ],
            ),
            (
                DailyUsageRollup,
                [
                    DailyUsageRollup(
                        day=day,
                        source=source,
                        business_id=business_id,
                        audience=audience,
                        model=model,
                        **dict(zip(_USAGE_ROLLUP_COLUMNS, values, strict=True)),
                    )
                    for (day, source, business_id, audience, model), values in self.usage.items()
                ],
            ),
            (DailyModelUsageRollup, self._model_usage_rows()),
        ]

    def _model_usage_rows(self) -> list[DailyModelUsageRollup]:
        """The usage rows summed over sources and venues, per day and model."""
        sums: defaultdict[tuple[date, str], list[int]] = defaultdict(lambda: [0] * len(_USAGE_ROLLUP_COLUMNS))
        for (day, _source, _business_id, _audience, model), values in self.usage.items():
            totals = sums[(day, model)]
            for index, value in enumerate(values):
                totals[index] += value
        return [
            DailyModelUsageRollup(day=day, model=model, **dict(zip(_USAGE_ROLLUP_COLUMNS, values, strict=True)))
            for (day, model), values in sums.items()
        ]


def rollups_rebuild(
    *, batch_size: int = 2000, progress: ProgressCallback | None = None, keep_days: Collection[date] = ()
) -> RebuildResult:
    """Recompute every rollup row from conversations and messages, except the rows of `keep_days`.

    Reads in primary-key batches (calling `progress(done, total)` after each), then replaces the
    rollup tables. Writes logged while it runs may be missed: run it when the desk is quiet, or run
    it again. Memory grows with the number of rollup rows (days x sources x models...), not messages.

    `keep_days` (selectors.deleted_days: days some conversations were purged or erased from) keep their
    rows as they are: those figures still count the deleted conversations, which cannot be recounted.
    """
    from support.services.rollup_fold import rollup_marks_rebuild, rollups_fold  # imports this module

    # The turns waiting for the fold are counted below: fold them first, so no fold adds them again.
    rollups_fold()
    total = Conversation.objects.count()
    tally = _RebuildTally()
    done = messages_seen = 0
    for rows in _batched_by_pk(
        Conversation.objects.all(),
        fields=(*STATE_FIELDS, "cost_micros", "question_key", "summary"),
        batch_size=batch_size,
    ):
        messages_seen += tally.add_batch(rows)
        done += len(rows)
        if progress is not None:
            progress(done, total)
    keep = set(keep_days)
    tables = [(model, [row for row in new_rows if row.day not in keep]) for model, new_rows in tally.rows()]
    # Not one transaction: MongoDB may not roll back, and a half-written rebuild is repaired by rerunning.
    with transaction.atomic():
        for model, new_rows in tables:
            stale = model._default_manager.exclude(day__in=sorted(keep)) if keep else model._default_manager.all()
            stale.delete()
            model._default_manager.bulk_create(new_rows, batch_size=1000)
    from support.services.grounding import grounding_rollups_rebuild  # issue 14; imports this module

    grounded = grounding_rollups_rebuild(keep_days=keep)
    rollup_marks_rebuild()  # what the fold of the next turns reads, as the rows above were counted
    return RebuildResult(
        conversations=done,
        messages=messages_seen,
        rows=sum(len(new_rows) for _, new_rows in tables) + grounded,
        kept_days=len(keep),
    )


def _question_keys_refresh(rows: list[tuple[Any, ...]]) -> dict[Any, str]:
    """Recompute the question keys of a batch (pk first, question_key and summary last) with today's
    rollups.normalise_question, store those that changed, and return them by pk.

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
        key = rollups.normalise_question(text)
        if key != question_key:
            changed[pk] = key
    for pk, key in changed.items():
        Conversation.objects.filter(pk=pk).update(question_key=key)
    return changed
