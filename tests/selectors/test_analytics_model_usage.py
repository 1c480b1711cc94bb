"""Analytics of every venue read usage from its per-day, per-model rollup (DailyModelUsageRollup), a few rows
a day, instead of the per-venue usage rows; the figures stay those of the per-venue rows summed."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from support import selectors, services
from support.models import DailyModelUsageRollup, DailyUsageRollup
from tests.fakes.commands import database_commands
from tests.fakes.desk import haiku_price_doubled
from tests.fakes.venues import build_venues

pytestmark = pytest.mark.django_db

_FIGURES = ("conversations", "messages", "input_tokens", "output_tokens", "cost_micros", "client_messages")


@pytest.fixture
def venues(staff_user: Any) -> Any:
    return build_venues(staff=staff_user)


def per_model(model: Any) -> dict[tuple[Any, str], Counter[str]]:
    """Every row of `model`, summed per (day, model)."""
    sums: dict[tuple[Any, str], Counter[str]] = {}
    for row in model.objects.all():
        figures = sums.setdefault((row.day, row.model), Counter())
        for name in _FIGURES:
            figures[name] += getattr(row, name)
    return sums


def test_every_venues_analytics_read_usage_per_model_not_per_venue(venues: Any) -> None:
    with database_commands() as commands:
        selectors.analytics_summary(days=1)
    assert commands.containing("support_rollup_usage") == []
    assert len(commands.containing("support_rollup_model_usage")) == 1


def test_a_venues_analytics_still_read_its_own_usage_rows(venues: Any) -> None:
    with database_commands() as commands:
        data = selectors.analytics_summary(days=1, business_id="b7")
    assert len(commands.containing("support_rollup_usage")) == 1
    assert commands.containing("support_rollup_model_usage") == []
    assert data["total_cost_micros"] == sum(c.cost_micros for c in venues.of("b7"))


def test_the_services_keep_the_model_rows_equal_to_the_venue_rows_summed(venues: Any) -> None:
    assert per_model(DailyModelUsageRollup) == per_model(DailyUsageRollup)
    assert len(per_model(DailyModelUsageRollup)) == DailyModelUsageRollup.objects.count()
    data = selectors.analytics_summary(days=1)
    assert {row["model"]: row["cost_micros"] for row in data["by_model"]} == {
        model: figures["cost_micros"] for (_, model), figures in per_model(DailyUsageRollup).items() if model
    }
    assert data["total_cost_micros"] == sum(c.cost_micros for c in venues.conversations)
    assert sum(row["cost_micros"] for row in data["by_business"]) == data["total_cost_micros"]


def test_a_reprice_moves_the_model_rows_as_a_rebuild_would(venues: Any) -> None:
    haiku_price_doubled(days_back=30)
    before = selectors.analytics_summary(days=1)
    services.messages_reprice(model="claude-haiku-4-5", since=(timezone.now() - timedelta(days=30)).date())
    live = selectors.analytics_summary(days=1)
    assert live["total_cost_micros"] > before["total_cost_micros"]
    assert per_model(DailyModelUsageRollup) == per_model(DailyUsageRollup)
    services.rollups_rebuild()
    assert selectors.analytics_summary(days=1) == live
    assert per_model(DailyModelUsageRollup) == per_model(DailyUsageRollup)
