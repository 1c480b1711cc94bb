"""manage.py cost_report per venue: --by business / audience and --business / --audience."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from support import selectors
from tests.fakes.venues import build_venues

pytestmark = pytest.mark.django_db


def report(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("cost_report", "--days", "1", "--format", "json", *args, stdout=out, stderr=io.StringIO())
    body: dict[str, Any] = json.loads(out.getvalue())
    return body


@pytest.fixture
def venues(staff_user: Any) -> Any:
    return build_venues(staff=staff_user)


def test_cost_report_by_business_matches_the_conversations_and_the_analytics_rows(venues: Any) -> None:
    body = report("--by", "business")
    rows = {row["business"]: row for row in body["rows"]}
    assert set(rows) == {"b7", "b8", selectors.NO_BUSINESS}
    analytics = {
        row["business_id"] or selectors.NO_BUSINESS: row for row in selectors.analytics_summary(days=1)["by_business"]
    }
    for key, row in rows.items():
        conversations = venues.of("" if key == selectors.NO_BUSINESS else key)
        assert row["conversations"] == len(conversations) == analytics[key]["conversations"]
        assert row["cost_micros"] == sum(c.cost_micros for c in conversations) == analytics[key]["cost_micros"]
        assert row["messages"] == sum(c.message_count for c in conversations)
    assert body["total"]["conversations"] == len(venues.conversations)


def test_cost_report_keeps_one_business_or_audience(venues: Any) -> None:
    b7 = report("--business", "b7", "--by", "model")
    assert b7["total"]["conversations"] == len(venues.of("b7"))
    assert b7["total"]["cost_micros"] == sum(c.cost_micros for c in venues.of("b7"))
    assert sum(row["cost_micros"] for row in b7["rows"]) == b7["total"]["cost_micros"]
    by_audience = report("--business", "b8", "--by", "audience")
    assert {row["audience"]: row["conversations"] for row in by_audience["rows"]} == {"diner": 1, "owner": 2}
    diners = report("--audience", "diner")
    assert diners["total"]["conversations"] == sum(c.audience == "diner" for c in venues.conversations)
    assert report("--business", "nowhere")["total"]["conversations"] == 0


def test_cost_report_refuses_an_unknown_audience() -> None:
    with pytest.raises(CommandError):
        call_command("cost_report", "--audience", "chef", stdout=io.StringIO(), stderr=io.StringIO())
