"""The chat proxy's daily budget row."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from support.models import DailySpend


def daily_spend_today(*, now: datetime | None = None) -> DailySpend | None:
    """Today's (UTC) budget row: what the chat proxy spent and holds reserved; None before the first call."""
    day = (now or timezone.now()).date()
    return DailySpend.objects.filter(day=day).first()
