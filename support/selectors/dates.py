"""Whole UTC days: the windows analytics and the cost report read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone


def utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """Whole UTC days, both ends included."""

    date_from: date
    date_to: date

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def each_day(self) -> list[date]:
        return [self.date_from + timedelta(days=i) for i in range(self.days)]


#: The longest explicit date range analytics accept, as `days` allows at most 365.
MAX_WINDOW_DAYS = 366


def window_error(*, date_from: date | None, date_to: date | None, today: date | None = None) -> tuple[str, str] | None:
    """(field, message) when a date range cannot be a window, else None.

    A range with only date_from ends today, so it is held to the same limit as a full one: without
    that, date_from=2000-01-01 asked for ten thousand days, and one after today for none at all.
    """
    if not date_from:
        return None
    end = date_to or today or timezone.now().date()
    if date_from > end:
        return ("date_from", "Must not be after date_to." if date_to else "Must not be after today.")
    if (end - date_from).days >= MAX_WINDOW_DAYS:
        return ("date_to" if date_to else "date_from", f"A range covers at most {MAX_WINDOW_DAYS} days.")
    return None


def window_for(
    *, days: int | None = None, date_from: date | None = None, date_to: date | None = None, today: date | None = None
) -> Window:
    """An explicit date range wins; otherwise the last `days` days (default 30), today included."""
    today = today or timezone.now().date()
    if date_from or date_to:
        end = date_to or today
        start = date_from or end - timedelta(days=(days or 30) - 1)
        if start > end:
            raise ValueError("date_from must not be after date_to")
        return Window(start, end)
    return Window(today - timedelta(days=(days or 30) - 1), today)
