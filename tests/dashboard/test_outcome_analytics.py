"""The outcome figures (issue 14) on the analytics page, in GET analytics and in cost_report: each one drills
down to exactly the tickets it counts, and rebuild_rollups reproduces them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from support import selectors, services
from support.models import Outcome
from tests.fakes.outcome_desk import PLAN, build_outcome_desk

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def listed(client: Client, url: str) -> dict[str, int]:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["totals"]


def test_the_resolution_rate_leaves_abandoned_and_open_out_and_splits_confirmed_from_assumed() -> None:
    desk = build_outcome_desk()
    data = selectors.analytics_summary(days=1)
    assert {row["outcome"]: row["count"] for row in data["by_outcome"]} == PLAN
    # Decided: 2 confirmed + 1 assumed + 1 escalated + 1 negative.
    assert data["resolution_denominator"] == 5
    assert (data["resolution_pct"], data["confirmed_resolution_pct"], data["assumed_resolution_pct"]) == (60, 40, 20)
    total = sum(c.cost_micros for group in desk.values() for c in group)
    assert data["total_cost_micros"] == total
    assert data["cost_per_resolution_usd"] == round(total / 3) / 1_000_000
    assert data["cost_per_confirmed_resolution_usd"] == round(total / 2) / 1_000_000
    assert data["escalated_cost_micros"] == desk["escalated"][0].cost_micros
    assert data["abandoned_cost_micros"] == sum(c.cost_micros for c in desk["abandoned"])


def test_each_outcome_figure_links_to_exactly_the_tickets_it_counts(browser: Client) -> None:
    build_outcome_desk()
    context = browser.get("/dashboard/analytics/?days=7").context
    cards = [card for card in context["cards"] if "outcome=" in card["url"]]
    assert len(cards) == 8
    for card in cards:
        assert listed(browser, card["url"])["conversations"] == card["count"], card["label"]
    by_label = {card["label"]: card for card in cards}
    assert by_label["Resolved by the bot (of 5 decided)"]["value"] == "60.0%"
    data = context["data"]
    escalated = listed(browser, by_label["Cost of escalated conversations"]["url"])
    assert escalated["cost_micros"] == data["escalated_cost_micros"]
    abandoned = listed(browser, by_label["Cost of abandoned conversations"]["url"])
    assert abandoned["cost_micros"] == data["abandoned_cost_micros"]
    for row in context["tables"]["outcomes"]:
        totals = listed(browser, row["url"])
        assert (totals["conversations"], totals["cost_micros"]) == (row["count"], row["cost_micros"]), row


def test_get_analytics_and_its_drill_down_agree(staff: Any) -> None:
    build_outcome_desk()
    data = staff.get("/api/support/analytics?days=1").json()
    assert data["confirmed_count"] == 2
    listed_resolved = staff.get("/api/support/conversations?outcome=confirmed,assumed&page_size=100").json()
    assert listed_resolved["count"] == data["resolved_count"] == 3
    bad = staff.get("/api/support/conversations?outcome=solved")
    assert bad.status_code == 400 and "outcome" in bad.json()["errors"]


def test_rebuild_rollups_reproduces_every_outcome_figure() -> None:
    build_outcome_desk()
    before = selectors.analytics_summary(days=1)
    services.rollups_rebuild(batch_size=2)
    assert selectors.analytics_summary(days=1) == before


def test_cost_report_reports_the_same_outcome_figures_as_analytics() -> None:
    build_outcome_desk()
    out = io.StringIO()
    call_command("cost_report", "--days", "1", "--by", "outcome", "--format", "json", "--no-progress", stdout=out)
    report = json.loads(out.getvalue())
    data = selectors.analytics_summary(days=1)
    assert report["outcomes"] == {name: data[name] for name in report["outcomes"]}
    assert {row["outcome"]: row["conversations"] for row in report["rows"]} == PLAN
    table = io.StringIO()
    call_command("cost_report", "--days", "1", "--no-progress", stdout=table)
    assert "Resolved by the bot: 60.0% of 5 decided (confirmed 2 = 40.0%, assumed 1 = 20.0%)" in table.getvalue()
    assert Outcome.CONFIRMED in {row["outcome"] for row in report["rows"]}


def test_the_ticket_page_and_the_api_show_each_conversations_outcome(browser: Client, staff: Any) -> None:
    desk = build_outcome_desk()
    confirmed = desk["confirmed"][0]
    page = browser.get(f"/dashboard/conversations/{confirmed.pk}/").content.decode()
    assert "Confirmed resolved (customer said so)" in page
    assert staff.get(f"/api/support/conversations/{confirmed.pk}").json()["outcome"] == "confirmed"
