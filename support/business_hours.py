"""Business hours: when a person answers, and first-response due times counted in those hours.

SUPPORT_BUSINESS_HOURS is one line an operator writes in .env: a time zone, then opening times,
separated by semicolons::

    Europe/London; Mon-Fri 09:00-17:30; Sat 10:00-14:00
    America/New_York; Mon,Wed,Fri 08:00-12:00,13:00-18:00
    Europe/Paris; Fri 22:00-02:00          (an overnight span: Friday 22:00 to Saturday 02:00)
    24/7                                   (always open; also the default when unset)

Days are Mon Tue Wed Thu Fri Sat Sun, single, comma-separated or ranges (Mon-Fri, Fri-Mon wraps);
times are 24-hour HH:MM, `24:00` ends a day; an end before its start runs past midnight. Opening
times are local wall-clock times in the zone (zoneinfo), so a due time moves with the clocks across
daylight-saving changes. Every function takes and returns aware datetimes; results are in UTC.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS = {"24/7", "always"}
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
#: How far ahead to look for an opening before giving up (a parsed schedule always has one within a week).
_HORIZON_DAYS = 3700

#: How the phrase names some zones; any other zone is named by its city ("Europe/Paris" -> "Paris time").
_ZONE_LABELS = {"Europe/London": "UK time", "UTC": "UTC", "Etc/UTC": "UTC"}


@dataclass(frozen=True)
class Window:
    """One weekly opening: a weekday (0 = Monday) and local minutes from that day's midnight."""

    weekday: int
    start: int
    end: int  # may exceed 1440: the opening runs into the next day


@dataclass(frozen=True)
class BusinessHours:
    zone: str
    windows: tuple[Window, ...]  # empty: always open

    @property
    def always_open(self) -> bool:
        return not self.windows

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


ALWAYS_OPEN = BusinessHours(zone="UTC", windows=())


# --- Parsing ---------------------------------------------------------------------------------
def parse(text: str) -> BusinessHours:
    """The schedule `text` spells; ValueError saying what is wrong otherwise."""
    parts = [part.strip() for part in text.split(";") if part.strip()]
    if not parts or (len(parts) == 1 and parts[0].lower() in ALWAYS):
        return ALWAYS_OPEN
    zone = parts[0]
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r} (use an IANA name such as Europe/London)") from None
    if len(parts) == 1:
        raise ValueError("no opening times after the time zone (e.g. 'Europe/London; Mon-Fri 09:00-17:30')")
    windows: list[Window] = []
    for part in parts[1:]:
        windows.extend(_windows(part))
    return BusinessHours(zone=zone, windows=tuple(windows))


def _windows(part: str) -> list[Window]:
    days_text, _, times_text = part.partition(" ")
    if not times_text.strip():
        raise ValueError(f"{part!r}: expected days then times, e.g. 'Mon-Fri 09:00-17:30'")
    days = _days(days_text)
    spans = [_span(item.strip()) for item in times_text.replace(" ", "").split(",") if item.strip()]
    return [Window(weekday=day, start=start, end=end) for day in days for start, end in spans]


def _day(name: str) -> int:
    key = name.strip().lower()[:3]
    if key not in DAYS or len(name.strip()) < 3:
        raise ValueError(f"unknown day {name.strip()!r} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    return DAYS.index(key)


def _days(text: str) -> list[int]:
    days: list[int] = []
    for item in text.split(","):
        first, dash, last = item.partition("-")
        if not dash:
            days.append(_day(first))
            continue
        start, end = _day(first), _day(last)
        days.extend((start + offset) % 7 for offset in range((end - start) % 7 + 1))
    return days


def _minutes(text: str) -> int:
    match = _TIME.fullmatch(text)
    if not match:
        raise ValueError(f"bad time {text!r} (use 24-hour HH:MM)")
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"bad time {text!r} (use 24-hour HH:MM)")
    return hours * 60 + minutes


def _span(text: str) -> tuple[int, int]:
    start_text, dash, end_text = text.partition("-")
    if not dash:
        raise ValueError(f"bad opening {text!r} (use HH:MM-HH:MM)")
    start, end = _minutes(start_text), _minutes(end_text)
    if start == end or start == 24 * 60:
        raise ValueError(f"empty opening {text!r}")
    return start, end if end > start else end + 24 * 60


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> BusinessHours:
    return parse(text)


def configured() -> BusinessHours:
    """The schedule in settings (validated at start-up by rezvo_support.env.env_business_hours)."""
    return _parsed(getattr(settings, "SUPPORT_BUSINESS_HOURS", "") or "")


# --- Arithmetic ------------------------------------------------------------------------------
def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    moment = datetime.combine(day, time(), tzinfo=tz) + timedelta(days=minutes // 1440)
    wall = moment.replace(hour=(minutes % 1440) // 60, minute=minutes % 60)
    # Via UTC, so later arithmetic is real elapsed time (same-zone datetimes subtract as wall clock).
    return wall.astimezone(UTC)


def openings(hours: BusinessHours, after: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Opening spans (UTC, start < end, merged, in order) that end after `after`."""
    tz = hours.tz
    first = after.astimezone(tz).date() - timedelta(days=1)  # yesterday's overnight span may still run
    pending: tuple[datetime, datetime] | None = None
    for offset in range(_HORIZON_DAYS):
        day = first + timedelta(days=offset)
        spans = sorted(
            (_local(day, w.start, tz), _local(day, w.end, tz)) for w in hours.windows if w.weekday == day.weekday()
        )
        for start, end in spans:
            if end <= after or end <= start:
                continue
            if pending is not None and start <= pending[1]:
                pending = (pending[0], max(pending[1], end))
                continue
            if pending is not None:
                yield pending
            pending = (start, end)
    if pending is not None:
        yield pending


def is_open(at: datetime, hours: BusinessHours | None = None) -> bool:
    hours = hours or configured()
    if hours.always_open:
        return True
    start, _end = next(openings(hours, at))
    return start <= at


def next_opening(at: datetime, hours: BusinessHours | None = None) -> datetime:
    """`at` itself when open, else when the desk next opens (UTC)."""
    hours = hours or configured()
    if hours.always_open:
        return at.astimezone(UTC)
    start, _end = next(openings(hours, at))
    return max(start, at).astimezone(UTC)


def add_business_minutes(start: datetime, minutes: int, hours: BusinessHours | None = None) -> datetime:
    """The moment `minutes` of opening time after `start` (UTC); closed time does not count."""
    hours = hours or configured()
    if hours.always_open:
        return (start + timedelta(minutes=minutes)).astimezone(UTC)
    remaining = timedelta(minutes=minutes)
    for span_start, span_end in openings(hours, start):
        begin = max(span_start, start)
        if remaining <= span_end - begin:
            return (begin + remaining).astimezone(UTC)
        remaining -= span_end - begin
    raise ValueError("no opening found")  # unreachable: a parsed schedule opens every week


def first_response_due(escalated_at: datetime) -> datetime:
    """When a person should first reply to a ticket escalated at `escalated_at`."""
    return add_business_minutes(escalated_at, settings.SUPPORT_FIRST_RESPONSE_MINUTES)


# --- Words for the customer ------------------------------------------------------------------
def zone_label(zone: str) -> str:
    return _ZONE_LABELS.get(zone) or zone.rsplit("/", 1)[-1].replace("_", " ") + " time"


def _when(moment: datetime, now: datetime, hours: BusinessHours) -> str:
    local, today = moment.astimezone(hours.tz), now.astimezone(hours.tz).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        day = ""
    elif local.date() == today + timedelta(days=1):
        day = " tomorrow"
    elif local.date() - today < timedelta(days=7):
        day = f" on {local.strftime('%A')}"
    else:
        day = f" on {local.strftime('%A')} {local.day} {local.strftime('%B')}"
    return f"{clock}{day} {zone_label(hours.zone)}"


def handoff_phrase(at: datetime, hours: BusinessHours | None = None, minutes: int | None = None) -> str:
    """What the customer is told on escalation about when a person will reply (no closing full stop)."""
    hours = hours or configured()
    minutes = settings.SUPPORT_FIRST_RESPONSE_MINUTES if minutes is None else minutes
    due = add_business_minutes(at, minutes, hours)
    if not is_open(at, hours):
        opening = next_opening(at, hours)
        return f"We're back at {_when(opening, at, hours)}; we'll reply here and by email"
    if due - at <= timedelta(minutes=minutes):
        return f"A person will reply here within about {_duration(minutes)}"
    return f"A person will reply here or by email by {_when(due, at, hours)}"


def _duration(minutes: int) -> str:
    if minutes % 60 == 0 and minutes >= 120:
        return f"{minutes // 60} hours"
    if minutes == 60:
        return "an hour"
    return f"{minutes} minutes"
