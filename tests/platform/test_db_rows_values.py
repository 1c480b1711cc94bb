"""support.db.rows_values: analytics reads its rollup rows as dicts without the ORM's per-row machinery on
MongoDB; the dicts must be the ones `queryset.values()` gives, value types included, on both databases."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from support import db
from support.models import DailyConversationRollup, DailyUsageRollup, Message
from tests.fakes.commands import database_commands

pytestmark = pytest.mark.django_db


def _rollups() -> None:
    for day, status, escalated in ((1, "auto_resolved", False), (2, "needs_review", True), (9, "closed", True)):
        DailyConversationRollup.objects.create(
            day=date(2026, 11, day), source="web", status=status, escalated=escalated, business_id="venue-1",
            conversations=day * 3, cost_micros=570 * day,
        )  # fmt: skip
    DailyUsageRollup.objects.create(
        day=date(2026, 11, 2), source="app_owner", model="claude-haiku-4-5", conversations=1, messages=2,
        input_tokens=45, output_tokens=105, cost_micros=570,
    )  # fmt: skip


def _typed(rows: list[dict[str, Any]]) -> list[list[tuple[str, type, Any]]]:
    return [[(name, type(value), value) for name, value in row.items()] for row in rows]


def test_it_gives_the_dicts_values_gives_with_their_types() -> None:
    _rollups()
    fields = ("day", "status", "escalated", "business_id", "rating", "conversations", "cost_micros")
    window = DailyConversationRollup.objects.filter(day__gte=date(2026, 11, 2), day__lte=date(2026, 11, 30))
    rows = db.rows_values(window.order_by("day"), *fields)
    assert _typed(rows) == _typed(list(window.order_by("day").values(*fields)))
    assert [(row["day"], row["escalated"], row["conversations"]) for row in rows] == [
        (date(2026, 11, 2), True, 6),
        (date(2026, 11, 9), True, 27),
    ]


def test_it_reads_every_column_of_a_usage_row() -> None:
    _rollups()
    fields = [field.name for field in DailyUsageRollup._meta.concrete_fields if not field.primary_key]
    (row,) = db.rows_values(DailyUsageRollup.objects.filter(day=date(2026, 11, 2)), *fields)
    assert _typed([row]) == _typed(list(DailyUsageRollup.objects.values(*fields)))
    assert (row["model"], row["input_tokens"], row["output_tokens"], row["cost_micros"]) == (
        "claude-haiku-4-5",
        45,
        105,
        570,
    )


def test_it_answers_nothing_for_a_filter_that_matches_nothing_without_asking_the_database() -> None:
    _rollups()
    with CaptureQueriesContext(connection) as queries:
        rows = db.rows_values(DailyUsageRollup.objects.filter(pk__in=[]), "day", "model")
    assert rows == [] and not queries.captured_queries


def test_it_reads_a_foreign_key_by_its_column(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    Message.objects.create(conversation=conversation, role="user", content="Is the terrace open?")
    rows = db.rows_values(Message.objects.filter(conversation=conversation), "conversation_id", "role", "content")
    assert rows == [{"conversation_id": conversation.pk, "role": "user", "content": "Is the terrace open?"}]


def test_it_reads_every_row_in_one_command_past_the_drivers_first_batch() -> None:
    DailyUsageRollup.objects.bulk_create(
        DailyUsageRollup(day=date(2026, 11, 1 + n % 28), source="web", model=f"model-{n}", messages=n)
        for n in range(150)
    )
    with database_commands() as commands:
        rows = db.rows_values(DailyUsageRollup.objects.all(), "model", "messages")
    assert sorted(row["messages"] for row in rows) == list(range(150))
    assert len(commands.sent) == 1, [name for name, _ in commands.sent]
