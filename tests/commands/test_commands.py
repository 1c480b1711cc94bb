"""manage.py cost_report, rebuild_rollups and reprice: output, options and effects."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from support import selectors, services
from support.models import Conversation, DailyModelUsageRollup, DailyUsageRollup, Message, ModelPrice
from tests.fakes.desk import build_desk, haiku_price_doubled

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def desk(staff_user: Any) -> list[Conversation]:
    return build_desk(staff=staff_user)


# --- cost_report -----------------------------------------------------------------------------
def test_cost_report_csv_by_day_has_every_day_and_a_totals_row_matching_analytics(desk: Any) -> None:
    out, err = run("cost_report", "--days", "7", "--by", "day", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 8  # seven days and the totals row
    total = rows[-1]
    assert total["day"] == "total"
    analytics = selectors.analytics_summary(days=7)
    assert int(total["conversations"]) == analytics["total_conversations"]
    assert int(total["messages"]) == analytics["total_messages"]
    assert int(total["cost_micros"]) == analytics["total_cost_micros"]
    assert sum(int(r["conversations"]) for r in rows[:-1]) == int(total["conversations"])
    assert err == ""  # small data: no progress lines


def test_cost_report_json_by_model_splits_tokens_by_kind(desk: Any) -> None:
    out, _ = run("cost_report", "--days", "7", "--by", "model", "--format", "json")
    body = json.loads(out)
    by_model = {row["model"]: row for row in body["rows"]}
    assert set(by_model) == {"claude-haiku-4-5", "claude-sonnet-4-5"}
    haiku = Message.objects.filter(model="claude-haiku-4-5", conversation__in=[c.pk for c in desk[:-1]])
    assert by_model["claude-haiku-4-5"]["messages"] == haiku.count()
    assert by_model["claude-haiku-4-5"]["input_tokens"] == sum(m.input_tokens for m in haiku)
    assert by_model["claude-haiku-4-5"]["output_tokens"] == sum(m.output_tokens for m in haiku)
    assert by_model["claude-haiku-4-5"]["conversations"] == 5
    assert body["total"]["cost_micros"] == sum(row["cost_micros"] for row in body["rows"])
    assert body["total"]["cost_usd"] == body["total"]["cost_micros"] / 1_000_000


@pytest.mark.parametrize(("by", "keys"), [("source", {"web", "app_owner", "app_diner", "dashboard"}), ("status", None)])
def test_cost_report_groups_by_source_and_status(desk: Any, by: str, keys: set[str] | None) -> None:
    out, _ = run("cost_report", "--days", "7", "--by", by, "--format", "json")
    rows = {row[by]: row["conversations"] for row in json.loads(out)["rows"]}
    recent = desk[:-1]
    expected: dict[str, int] = {}
    for conversation in recent:
        key = getattr(conversation, by)
        expected[key] = expected.get(key, 0) + 1
    assert rows == expected
    if keys:
        assert set(rows) == keys


def test_cost_report_date_range_and_table_format(desk: Any) -> None:
    today = timezone.now().date()
    start = (today - timedelta(days=60)).isoformat()
    end = (today - timedelta(days=30)).isoformat()
    out, _ = run("cost_report", "--from", start, "--to", end, "--by", "source")
    lines = out.splitlines()
    assert lines[0] == f"Cost report by source: conversations started {start} to {end}"
    assert lines[1].split()[:3] == ["source", "conv", "msgs"]
    total_line = next(line for line in lines if line.startswith("total"))
    assert total_line.split()[:2] == ["total", "1"]


def test_cost_report_shows_progress_on_stderr_for_large_data_and_keeps_stdout_clean(desk: Any) -> None:
    out, err = run("cost_report", "--days", "7", "--format", "json", "--batch-size", "2")
    json.loads(out)  # still parseable
    assert "conversations: 7/7 (100%)" in err


@pytest.mark.parametrize(
    "args",
    [("--from", "2026-02-30"), ("--from", "2026-02-01", "--to", "2026-01-01"), ("--days", "0")],
)
def test_cost_report_refuses_bad_options(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        run("cost_report", *args)


# --- rebuild_rollups -------------------------------------------------------------------------
def test_rebuild_rollups_restores_wiped_rollups_with_progress(desk: Any) -> None:
    before = selectors.analytics_summary(days=60)
    DailyUsageRollup.objects.all().delete()
    DailyModelUsageRollup.objects.all().delete()
    assert selectors.analytics_summary(days=60)["total_cost_micros"] == 0
    out, err = run("rebuild_rollups", "--batch-size", "3")
    assert f"Rebuilt rollups from 8 conversations and {Message.objects.count()} messages" in out
    assert "conversations: 8/8 (100%)" in err
    assert selectors.analytics_summary(days=60) == before


# --- reprice ---------------------------------------------------------------------------------
def test_reprice_recosts_turns_with_a_corrected_price_and_reports_both_totals(desk: Any) -> None:
    haiku = Message.objects.filter(model="claude-haiku-4-5")
    old_total = sum(m.cost_micros for m in haiku)
    old_analytics = selectors.analytics_summary(days=60)["total_cost_micros"]
    # A correction effective before every turn: haiku really costs twice as much.
    haiku_price_doubled(days_back=365)
    since = (timezone.now() - timedelta(days=365)).date().isoformat()

    dry, _ = run("reprice", "--model", "claude-haiku-4-5", "--since", since, "--dry-run")
    assert f"Old total: ${old_total / 1e6:.6f} ({old_total} micro-USD)" in dry
    assert f"New total: ${2 * old_total / 1e6:.6f}" in dry
    assert sum(m.cost_micros for m in haiku.all()) == old_total  # dry run changed nothing

    out, _ = run("reprice", "--model", "claude-haiku-4-5", "--since", since)
    assert f"New total: ${2 * old_total / 1e6:.6f} ({2 * old_total} micro-USD)" in out
    assert f"Changed {haiku.count()} turns in 6 conversations." in out
    assert sum(m.cost_micros for m in haiku.all()) == 2 * old_total
    for conversation in Conversation.objects.all():
        assert conversation.cost_micros == sum(m.cost_micros for m in conversation.messages.all())
    live = selectors.analytics_summary(days=60)
    assert live["total_cost_micros"] == old_analytics + old_total
    services.rollups_rebuild()
    assert selectors.analytics_summary(days=60) == live  # rollups moved exactly as a rebuild says


def test_reprice_leaves_turns_before_since_alone(desk: Any) -> None:
    old = desk[-1]  # forty-odd days ago
    Message.objects.filter(conversation=old).update(created_at=old.created_at)
    before = {m.pk: m.cost_micros for m in Message.objects.filter(conversation=old)}
    ModelPrice.objects.create(
        model="claude-haiku-4-5",
        input_per_mtok_micros=9_000_000,
        output_per_mtok_micros=9_000_000,
        cache_write_5m_per_mtok_micros=0,
        cache_write_1h_per_mtok_micros=0,
        cache_read_per_mtok_micros=0,
        effective_from=timezone.now() - timedelta(days=365),
    )
    since = (timezone.now() - timedelta(days=10)).date().isoformat()
    run("reprice", "--model", "claude-haiku-4-5", "--since", since)
    assert {m.pk: m.cost_micros for m in Message.objects.filter(conversation=old)} == before


def test_reprice_refuses_a_bad_date() -> None:
    with pytest.raises(CommandError, match="--since"):
        run("reprice", "--model", "claude-haiku-4-5", "--since", "last week")
