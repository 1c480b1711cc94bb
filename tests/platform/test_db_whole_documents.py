"""support.db.shapes on MongoDB: a query that reads every column of its model gets whole documents (no
$project, which SecantusDB runs in Python for each document), an ordering no longer sets fields to themselves
($addFields), a count adds 1 a row instead of testing a constant for each, an aggregate the output and its
order or filter share is computed once, and the rows read are the same."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from support.db.shapes import _accumulators_shared
from support.models import Conversation, DailyQuestionRollup, DailyUsageRollup, Message

pytestmark = pytest.mark.django_db


def _pipeline_of(collection: str, queries: CaptureQueriesContext) -> str:
    found = [q["sql"] for q in queries.captured_queries if f".{collection}.aggregate(" in q["sql"]]
    assert found, queries.captured_queries
    return found[-1]


def _usage_rows() -> None:
    for model, tokens in (("claude-haiku-4-5", 45), ("claude-sonnet-4-5", 7)):
        DailyUsageRollup.objects.create(
            day=date(2026, 11, 2), source="web", model=model, conversations=1, messages=2, input_tokens=tokens
        )


def test_it_reads_every_column_of_a_rollup_without_a_projection(on_mongodb: bool) -> None:
    _usage_rows()
    columns = [field.name for field in DailyUsageRollup._meta.concrete_fields if not field.primary_key]
    with CaptureQueriesContext(connection) as queries:
        rows = list(DailyUsageRollup.objects.filter(day__gte=date(2026, 11, 1)).order_by("model").values(*columns))
    assert [sorted(row) for row in rows] == [sorted(columns)] * 2
    assert [(row["model"], row["input_tokens"], row["cost_micros"]) for row in rows] == [
        ("claude-haiku-4-5", 45, 0),
        ("claude-sonnet-4-5", 7, 0),
    ]
    if on_mongodb:
        assert "'$project'" not in _pipeline_of("support_rollup_usage", queries)


def test_it_keeps_the_projection_of_a_read_of_some_columns(on_mongodb: bool) -> None:
    _usage_rows()
    with CaptureQueriesContext(connection) as queries:
        rows = list(DailyUsageRollup.objects.order_by("model").values("model", "input_tokens"))
    assert rows == [
        {"model": "claude-haiku-4-5", "input_tokens": 45},
        {"model": "claude-sonnet-4-5", "input_tokens": 7},
    ]
    if on_mongodb:
        assert "'$project'" in _pipeline_of("support_rollup_usage", queries)


def test_it_orders_a_page_of_conversations_without_setting_fields_to_themselves(
    make_conversation: Any, on_mongodb: bool
) -> None:
    made = [make_conversation()[0] for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        page = list(Conversation.objects.order_by("-created_at", "-pk")[:2])
    assert [c.pk for c in page] == [c.pk for c in sorted(made, key=lambda c: (c.created_at, c.pk), reverse=True)][:2]
    assert page[0].token_hash == made[-1].token_hash
    if on_mongodb:
        pipeline = _pipeline_of("support_conversations", queries)
        assert "'$addFields'" not in pipeline and "'$project'" not in pipeline


def test_it_keeps_the_projection_that_brings_a_joined_row(make_conversation: Any, staff_user: Any) -> None:
    conversation, _ = make_conversation()
    Message.objects.create(conversation=conversation, role="agent", content="Booked.", author=staff_user)
    turn = Message.objects.select_related("author").get(conversation=conversation)
    assert turn.author is not None
    assert (turn.content, turn.author, turn.author.email) == ("Booked.", staff_user, "agent@example.com")


def test_it_counts_rows_without_evaluating_a_constant_for_each(make_conversation: Any, on_mongodb: bool) -> None:
    for status in ("open", "open", "closed"):
        conversation, _ = make_conversation()
        Conversation.objects.filter(pk=conversation.pk).update(status=status)
    with CaptureQueriesContext(connection) as queries:
        counted = Conversation.objects.filter(status__in=["open", "needs_review"]).count()
    assert counted == 2
    if on_mongodb:
        pipeline = _pipeline_of("support_conversations", queries)
        assert "'$sum': 1" in pipeline and "'$cond'" not in pipeline


def _questions() -> None:
    for day, key, n in ((1, "parking", 4), (2, "parking", 3), (1, "dogs", 5), (2, "menu", 0), (3, "menu", 0)):
        DailyQuestionRollup.objects.create(day=date(2026, 11, day), question_key=key, conversations=n)


def test_it_sums_once_what_the_output_and_the_order_and_filter_share(on_mongodb: bool) -> None:
    _questions()
    with CaptureQueriesContext(connection) as queries:
        top = list(
            DailyQuestionRollup.objects.values("question_key")
            .annotate(n=Sum("conversations"))
            .filter(n__gt=0)
            .order_by("-n", "question_key")
        )
    assert top == [{"question_key": "parking", "n": 7}, {"question_key": "dogs", "n": 5}]
    if on_mongodb:
        pipeline = _pipeline_of("support_rollup_questions", queries)
        assert pipeline.count("'$sum'") == 1 and "__aggregation" not in pipeline


def test_it_keeps_an_accumulator_whose_name_a_sort_or_a_path_reads() -> None:
    pipeline = [{"$group": {"_id": None, "n": {"$sum": "$x"}, "__aggregation1": {"$sum": "$x"}}}]
    project = {"n": "$__aggregation1"}
    assert _accumulators_shared(pipeline, project, [{"__aggregation1": -1}]) == (pipeline, project)
    pathed = {"n": "$__aggregation1.total"}
    assert _accumulators_shared(pipeline, pathed, []) == (pipeline, pathed)
    assert _accumulators_shared(pipeline, project, [{"n": -1}]) == (
        [{"$group": {"_id": None, "n": {"$sum": "$x"}}}],
        {"n": "$n"},
    )
