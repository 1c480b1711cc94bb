"""Business hours: parsing SUPPORT_BUSINESS_HOURS, opening times and due times in business minutes (no DB)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from rezvo_support.env import env_business_hours
from support import business_hours
from support.business_hours import add_business_minutes, handoff_phrase, is_open, next_opening, parse

ROOT = Path(__file__).resolve().parents[2]
LONDON = parse("Europe/London; Mon-Fri 09:00-17:30; Sat 10:00-14:00")
NIGHTS = parse("Europe/London; Fri 22:00-02:00")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Mars/Olympus; Mon 09:00-17:00", "unknown time zone"),
        ("Europe/London", "no opening times"),
        ("Europe/London; Mon-Fri", "expected days then times"),
        ("Europe/London; Funday 09:00-17:00", "unknown day"),
        ("Europe/London; Mon 9-17", "bad time"),
        ("Europe/London; Mon 09:00-25:00", "bad time"),
        ("Europe/London; Mon 09:60-17:00", "bad time"),
        ("Europe/London; Mon 09:00", "bad opening"),
        ("Europe/London; Mon 09:00-09:00", "empty opening"),
    ],
)
def test_it_rejects_a_malformed_schedule_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


@pytest.mark.parametrize("text", ["", "24/7", "always", "  24/7 ; "])
def test_an_empty_or_24_7_schedule_is_always_open(text: str) -> None:
    assert parse(text).always_open


def test_day_lists_and_ranges_including_wrapping_ones_expand_to_weekdays() -> None:
    assert sorted({w.weekday for w in parse("UTC; Mon,Wed 09:00-10:00").windows}) == [0, 2]
    assert sorted({w.weekday for w in parse("UTC; Fri-Mon 09:00-10:00").windows}) == [0, 4, 5, 6]
    assert len(parse("UTC; Mon 09:00-12:00,13:00-17:00").windows) == 2


def test_the_settings_helper_names_the_variable_on_a_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORT_BUSINESS_HOURS", "Europe/London; Mon-Fri nine-five")
    with pytest.raises(ImproperlyConfigured, match="SUPPORT_BUSINESS_HOURS is not a valid schedule: bad time"):
        env_business_hours("SUPPORT_BUSINESS_HOURS")
    monkeypatch.setenv("SUPPORT_BUSINESS_HOURS", "Europe/London; Mon-Fri 09:00-17:00")
    assert env_business_hours("SUPPORT_BUSINESS_HOURS") == "Europe/London; Mon-Fri 09:00-17:00"


def test_the_app_refuses_to_start_with_a_bad_schedule() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URI"}}
    env.update(DEBUG="true", SECRET_KEY="x", SUPPORT_BUSINESS_HOURS="Europe/Lundon; Mon-Fri 09:00-17:30")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SUPPORT_BUSINESS_HOURS is not a valid schedule: unknown time zone 'Europe/Lundon'" in result.stderr


@pytest.mark.parametrize(
    ("at", "open_", "opens"),
    [
        ("2026-11-30T10:00", True, "2026-11-30T10:00"),  # Monday, winter (GMT)
        ("2026-11-30T08:59", False, "2026-11-30T09:00"),
        ("2026-11-30T17:30", False, "2026-12-01T09:00"),  # closing time is closed
        ("2026-12-04T18:00", False, "2026-12-05T10:00"),  # Friday evening -> Saturday 10:00
        ("2026-12-05T14:00", False, "2026-12-07T09:00"),  # Saturday after 14:00 -> Monday
        ("2026-06-01T08:30", True, "2026-06-01T08:30"),  # Monday, summer: 09:00 BST is 08:00 UTC
        ("2026-06-01T07:59", False, "2026-06-01T08:00"),
    ],
)
def test_opening_times_are_local_wall_clock_times(at: str, open_: bool, opens: str) -> None:
    assert is_open(utc(at), LONDON) is open_
    assert next_opening(utc(at), LONDON) == utc(opens)


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        ("2026-11-30T10:00", 60, "2026-11-30T11:00"),  # inside one opening
        ("2026-11-30T17:00", 60, "2026-12-01T09:30"),  # 30 today, 30 tomorrow
        ("2026-11-30T20:00", 60, "2026-12-01T10:00"),  # closed: counted from the next opening
        ("2026-12-04T17:00", 60, "2026-12-05T10:30"),  # Friday -> Saturday
        ("2026-12-05T13:30", 60, "2026-12-07T09:30"),  # Saturday -> Monday
        ("2026-12-06T12:00", 0, "2026-12-07T09:00"),  # zero minutes on a Sunday: the next opening
        ("2026-11-30T09:00", 8 * 60 + 30, "2026-11-30T17:30"),  # a whole working day ends at closing time
        # Clocks go forward on Sunday 29 March 2026: Friday 17:00 GMT + 60 -> Saturday 10:30 GMT (UTC)...
        ("2026-03-27T17:00", 60, "2026-03-28T10:30"),
        # ... and Saturday 13:30 GMT + 60 -> Monday 09:30 BST, which is 08:30 UTC.
        ("2026-03-28T13:30", 60, "2026-03-30T08:30"),
        # Clocks go back on Sunday 25 October 2026: Saturday 12:30 BST (11:30 UTC) + 120 -> Monday 09:30 GMT.
        ("2026-10-24T11:30", 120, "2026-10-26T09:30"),
    ],
)
def test_business_minutes_skip_closed_time_and_follow_the_clocks(start: str, minutes: int, due: str) -> None:
    assert add_business_minutes(utc(start), minutes, LONDON) == utc(due)


@pytest.mark.parametrize(
    ("at", "open_", "due"),
    [
        ("2026-12-04T23:00", True, "2026-12-05T00:00"),  # Friday night, inside the span
        ("2026-12-05T01:30", True, "2026-12-11T22:30"),  # 30 min left on Saturday, 30 more next Friday
        ("2026-12-05T02:00", False, "2026-12-11T23:00"),
    ],
)
def test_an_overnight_opening_runs_past_midnight(at: str, open_: bool, due: str) -> None:
    assert is_open(utc(at), NIGHTS) is open_
    assert add_business_minutes(utc(at), 60, NIGHTS) == utc(due)


def test_overlapping_openings_are_not_counted_twice() -> None:
    hours = parse("UTC; Mon 09:00-12:00,11:00-13:00")
    assert add_business_minutes(utc("2026-11-30T09:00"), 241, hours) == utc("2026-12-07T09:01")


def test_always_open_counts_wall_minutes() -> None:
    hours = parse("24/7")
    assert is_open(utc("2026-12-06T03:00"), hours)
    assert add_business_minutes(utc("2026-12-06T03:00"), 90, hours) == utc("2026-12-06T04:30")


@pytest.mark.parametrize(
    ("at", "phrase"),
    [
        ("2026-11-30T10:00", "A person will reply here within about an hour"),
        ("2026-11-30T08:00", "We're back at 09:00 UK time; we'll reply here and by email"),
        ("2026-12-04T18:00", "We're back at 10:00 tomorrow UK time; we'll reply here and by email"),
        ("2026-12-05T15:00", "We're back at 09:00 on Monday UK time; we'll reply here and by email"),
        ("2026-11-30T17:00", "A person will reply here or by email by 09:30 tomorrow UK time"),
    ],
)
def test_the_handoff_phrase_says_when_a_person_will_reply(at: str, phrase: str) -> None:
    assert handoff_phrase(utc(at), LONDON, 60) == phrase


def test_the_phrase_and_due_time_follow_the_settings() -> None:
    with override_settings(
        SUPPORT_BUSINESS_HOURS="America/New_York; Mon-Fri 09:00-17:00", SUPPORT_FIRST_RESPONSE_MINUTES=30
    ):
        assert handoff_phrase(utc("2026-11-30T15:00")) == "A person will reply here within about 30 minutes"
        assert (
            handoff_phrase(utc("2026-11-30T12:00"))
            == "We're back at 09:00 New York time; we'll reply here and by email"
        )
        assert business_hours.first_response_due(utc("2026-11-30T12:00")) == utc("2026-11-30T14:30")
    with override_settings(SUPPORT_BUSINESS_HOURS="", SUPPORT_FIRST_RESPONSE_MINUTES=45):
        assert handoff_phrase(utc("2026-12-06T03:00")) == "A person will reply here within about 45 minutes"
