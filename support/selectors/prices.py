"""Model prices: which row is in effect, and whether a model name is one we know."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from support.models import DailyUsageRollup, ModelPrice
from support.pricing import price_usable

logger = logging.getLogger(__name__)


def model_is_known(*, model: str) -> bool:
    """Whether `model` has a price row or any logged turns (read from the small usage rollups, which
    name every model a turn was logged with, rather than scanning messages)."""
    return ModelPrice.objects.filter(model=model).exists() or DailyUsageRollup.objects.filter(model=model).exists()


#: How long a process trusts its copy of the price table before reading it again. A price saved in this
#: process drops the copy at once (prices_table_forget, on save and delete); other processes see it within this.
PRICE_TABLE_TTL_S = 5.0

_table_lock = threading.Lock()
_table: tuple[float, dict[str, list[ModelPrice]]] | None = None


def prices_table_forget(**_signal: object) -> None:
    """Drop this process's copy of the price table (a row was saved or deleted)."""
    global _table
    with _table_lock:
        _table = None


def _prices_table() -> dict[str, list[ModelPrice]]:
    """Every price row by model, newest effective_from first: a few dozen rows, read once per TTL, so
    pricing a turn costs no query. Rows that take effect later are in it, so one passing needs no reload."""
    global _table
    now = time.monotonic()
    with _table_lock:
        if _table is not None and now < _table[0]:
            return _table[1]
    by_model: dict[str, list[ModelPrice]] = {}
    for row in ModelPrice.objects.order_by("model", "-effective_from"):
        by_model.setdefault(row.model, []).append(row)
    with _table_lock:
        _table = (now + PRICE_TABLE_TTL_S, by_model)
    return by_model


def models_prices_in_effect(*, models: set[str], at: datetime) -> dict[str, ModelPrice]:
    """The row in effect at `at` for each of `models` that has one (from the in-process price table)."""
    table = _prices_table()
    in_effect: dict[str, ModelPrice] = {}
    for model in sorted(models):
        for row in table.get(model, ()):
            if row.effective_from > at:
                continue
            if price_usable(row):
                in_effect[model] = row
                break
            logger.error("price row %s has a negative price; using the row in effect before it", row.pk)
    return in_effect
