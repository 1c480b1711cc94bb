"""Model prices: which row is in effect, and whether a model name is one we know."""

from __future__ import annotations

import logging
from datetime import datetime

from support.models import DailyUsageRollup, ModelPrice
from support.pricing import price_usable

logger = logging.getLogger(__name__)


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
