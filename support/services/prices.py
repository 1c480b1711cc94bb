"""Writes about prices: the published default rows, and re-costing turns after a price correction."""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from django.conf import settings

from support import pricing, rollups
from support.models import (
    Conversation,
    DailyModelUsageRollup,
    DailyUsageRollup,
    Message,
    MessageOrigin,
    ModelPrice,
)
from support.selectors import models_prices_in_effect
from support.services.rollups import ProgressCallback, _batched_by_pk, _rollup_add, conversation_cost_shift

logger = logging.getLogger(__name__)


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


#: The Message fields a reprice reads, after the primary key.
_REPRICE_FIELDS = (
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


@dataclass
class _RepriceTally:
    """What a reprice has seen so far: totals, and the cost moves per conversation (all, and the widget's)."""

    conversation_delta: Counter[Any] = field(default_factory=Counter)
    client_delta: Counter[Any] = field(default_factory=Counter)
    old_total: int = 0
    new_total: int = 0
    changed: int = 0

    def moved(self) -> dict[Any, int]:
        return {pk: delta for pk, delta in self.conversation_delta.items() if delta or self.client_delta[pk]}


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
    tally = _RepriceTally()
    done = 0
    for rows in _batched_by_pk(messages, fields=_REPRICE_FIELDS, batch_size=batch_size):
        _reprice_batch(rows, resolve=resolve, tally=tally, dry_run=dry_run)
        done += len(rows)
        if progress is not None:
            progress(done, total)
    moved = tally.moved()
    if not dry_run and moved:
        _reprice_conversations_move(model=model, moved=moved, client_delta=tally.client_delta)
    return RepriceResult(
        messages=total,
        changed=tally.changed,
        conversations=len(moved),
        old_total_micros=tally.old_total,
        new_total_micros=tally.new_total,
    )


def _reprice_batch(
    rows: list[tuple[Any, ...]],
    *,
    resolve: Callable[[datetime], tuple[ModelPrice | None, bool]],
    tally: _RepriceTally,
    dry_run: bool,
) -> None:
    """Re-cost one batch of turns (_REPRICE_FIELDS rows), storing the changed ones unless `dry_run`."""
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
        tally.old_total += cost
        tally.new_total += new_cost
        if (new_cost, new_price_id, new_fallback) == (cost, price_id, fallback):
            continue
        tally.changed += 1
        tally.conversation_delta[conversation_id] += new_cost - cost
        if origin == MessageOrigin.CLIENT:
            tally.client_delta[conversation_id] += new_cost - cost
        if not dry_run:
            Message.objects.filter(pk=pk).update(
                cost_micros=new_cost, price_id=new_price_id, price_fallback=new_fallback
            )


def _reprice_conversations_move(*, model: str, moved: dict[Any, int], client_delta: Counter[Any]) -> None:
    """Move the repriced conversations' costs, and their days' usage rollups, by the same differences."""
    owners = {
        pk: (rollups.utc_day(created_at), source, business_id, audience)
        for pk, created_at, source, business_id, audience in Conversation.objects.filter(
            pk__in=list(moved)
        ).values_list("pk", "created_at", "source", "business_id", "audience")
    }
    usage_delta: Counter[tuple[date, str, str, str]] = Counter()
    usage_client_delta: Counter[tuple[date, str, str, str]] = Counter()
    for pk, delta in moved.items():
        conversation_cost_shift(conversation_id=pk, delta=delta)  # its outcome's cost moves too
        if pk in owners:
            usage_delta[owners[pk]] += delta
            usage_client_delta[owners[pk]] += client_delta[pk]
    per_day: defaultdict[date, Counter[str]] = defaultdict(Counter)
    for (day, source, business_id, audience), delta in usage_delta.items():
        client = usage_client_delta[(day, source, business_id, audience)]
        _rollup_add(
            DailyUsageRollup,
            key={"day": day, "source": source, "model": model, "business_id": business_id, "audience": audience},
            cost_micros=delta,
            client_cost_micros=client,
        )
        per_day[day].update(cost_micros=delta, client_cost_micros=client)
    for day, amounts in per_day.items():
        _rollup_add(DailyModelUsageRollup, key={"day": day, "model": model}, **amounts)
