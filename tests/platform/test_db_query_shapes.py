"""support.db.shapes.mongodb_query_shapes: on MongoDB a select_related query filters before it joins, so a fetch by pk
reads one document instead of joining the whole collection (a filter on the joined row keeps its place), and
filters are flat documents of field conditions, which SecantusDB serves from an index; the same rows either way."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from support.db.shapes import _index_friendly, _reads_joined, _sorted_before_renames
from support.models import Conversation, IdempotencyRecord, Message

pytestmark = pytest.mark.django_db


def _pipeline_of(collection: str, queries: CaptureQueriesContext) -> str:
    found = [q["sql"] for q in queries.captured_queries if f".{collection}.aggregate(" in q["sql"]]
    assert found, queries.captured_queries
    return found[-1]


def test_it_filters_a_fetch_by_pk_before_joining_the_assignee(make_conversation: Any, on_mongodb: bool) -> None:
    if not on_mongodb:
        pytest.skip("the pipeline order is MongoDB's")
    conversation, _ = make_conversation()
    with CaptureQueriesContext(connection) as queries:
        found = Conversation.objects.select_related("assigned_to").filter(pk=conversation.pk).first()
    assert found == conversation and found.assigned_to is None
    pipeline = _pipeline_of("support_conversations", queries)
    assert pipeline.index("'$match'") < pipeline.index("'$lookup'")


def test_it_filters_a_transcript_before_joining_the_authors(
    make_conversation: Any, staff_user: Any, on_mongodb: bool
) -> None:
    if not on_mongodb:
        pytest.skip("the pipeline order is MongoDB's")
    conversation, _ = make_conversation()
    other, _ = make_conversation()
    Message.objects.create(conversation=conversation, role="user", content="Is my table booked?")
    Message.objects.create(conversation=conversation, role="agent", content="Yes.", author=staff_user)
    Message.objects.create(conversation=other, role="user", content="Not this one.")
    with CaptureQueriesContext(connection) as queries:
        turns = list(Message.objects.filter(conversation=conversation).select_related("author").order_by("created_at"))
    assert [(t.content, t.author) for t in turns] == [("Is my table booked?", None), ("Yes.", staff_user)]
    pipeline = _pipeline_of("support_messages", queries)
    assert pipeline.index("'$match'") < pipeline.index("'$lookup'")


def test_it_keeps_a_filter_on_the_joined_row_after_the_join(
    make_conversation: Any, staff_user: Any, on_mongodb: bool
) -> None:
    assigned, _ = make_conversation()
    make_conversation()
    Conversation.objects.filter(pk=assigned.pk).update(assigned_to=staff_user)
    with CaptureQueriesContext(connection) as queries:
        found = list(Conversation.objects.select_related("assigned_to").filter(assigned_to__username="agent"))
    assert [(c.pk, c.assigned_to) for c in found] == [(assigned.pk, staff_user)]
    if on_mongodb:
        pipeline = _pipeline_of("support_conversations", queries)
        assert pipeline.index("'$lookup'") < pipeline.index("'$match'")


def test_it_counts_a_path_into_a_joined_row_or_the_whole_document_as_reading_the_join() -> None:
    aliases = frozenset({"auth_user"})
    assert _reads_joined({"auth_user.username": "agent"}, aliases)
    assert _reads_joined({"$expr": {"$eq": ["$auth_user.is_staff", True]}}, aliases)
    assert _reads_joined({"$expr": {"$eq": ["$$ROOT", None]}}, aliases)
    assert _reads_joined({"$or": [{"status": "open"}, {"auth_user": None}]}, aliases)
    assert not _reads_joined({"_id": 7, "assigned_to_id": {"$in": [1, 2]}}, aliases)
    assert not _reads_joined({"$expr": {"$lt": ["$created_at", "$$NOW"]}}, aliases)


def test_it_flattens_nested_ands_and_merges_one_fields_operators() -> None:
    nested = {
        "$and": [
            {"$and": [{"message_count": {"$lte": 9}}, {"$and": [{"message_count": {"$ne": 4}}]}]},
            {"_id": 7},
        ]
    }
    flat = _index_friendly(nested)
    assert flat == {"message_count": {"$lte": 9, "$ne": 4}, "_id": 7}
    assert next(iter(flat)) == "_id"  # the point lookup is the clause SecantusDB tries first


def test_it_turns_a_nor_of_equalities_and_an_is_null_into_field_conditions() -> None:
    match = {
        "$and": [
            {"conversation_id": 3},
            {"$nor": [{"_id": {"$in": (1, 2)}}, {"role": "assistant"}]},
            {"$or": [{"response": {"$exists": False}}, {"response": None}]},
        ]
    }
    assert _index_friendly(match) == {
        "conversation_id": 3,
        "_id": {"$nin": (1, 2)},
        "role": {"$ne": "assistant"},
        "response": None,
    }


def test_it_leaves_what_it_cannot_merge_in_an_and() -> None:
    assert _index_friendly({"$and": [{"a": 1}, {"a": 2}]}) == {"a": 1, "$and": [{"a": 2}]}
    assert _index_friendly({"$and": [{"a": {"$gt": 1}}, {"a": {"$gt": 5}}]}) == {
        "a": {"$gt": 1},
        "$and": [{"a": {"$gt": 5}}],
    }
    either = {"$or": [{"a": 1}, {"b": 2}]}
    assert _index_friendly(either) == either
    assert _index_friendly({"$nor": [{"a": {"$gt": 1}}]}) == {"$nor": [{"a": {"$gt": 1}}]}
    pattern = {"$nor": [{"a": re.compile("^x")}]}
    assert _index_friendly(pattern) == pattern


def test_it_updates_a_conversation_by_pk_with_conditions_through_a_flat_filter(
    make_conversation: Any, on_mongodb: bool
) -> None:
    conversation, _ = make_conversation()
    other, _ = make_conversation()
    with CaptureQueriesContext(connection) as queries:
        updated = Conversation.objects.filter(pk=conversation.pk, message_count__lte=5, turns_reserved__lte=5).update(
            summary="moved"
        )
    assert updated == 1
    assert Conversation.objects.get(pk=conversation.pk).summary == "moved"
    assert Conversation.objects.get(pk=other.pk).summary == ""
    if on_mongodb:
        update = [q["sql"] for q in queries.captured_queries if "support_conversations.update_many(" in q["sql"]]
        assert update and "'$and'" not in update[0], queries.captured_queries


def test_it_finds_the_same_turns_with_exclusions_and_nulls(make_conversation: Any, staff_user: Any) -> None:
    conversation, _ = make_conversation()
    first = Message.objects.create(conversation=conversation, role="user", content="Hello?")
    second = Message.objects.create(conversation=conversation, role="assistant", content="Hi.", model="m")
    third = Message.objects.create(conversation=conversation, role="agent", content="Sam here.", author=staff_user)
    turns = Message.objects.filter(conversation=conversation)
    assert set(turns.exclude(pk__in=[first.pk])) == {second, third}
    assert set(turns.exclude(role="assistant").filter(author__isnull=True)) == {first}
    assert set(turns.filter(model="m").exclude(pk__in=[second.pk, third.pk])) == set()
    record = IdempotencyRecord.objects.create(conversation=conversation, key="k1", fingerprint="f")
    assert IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True).update(response={"ok": 1}) == 1
    assert IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True).update(response={"ok": 2}) == 0


def test_it_writes_the_checks_on_a_document_pinned_by_pk_as_negated_inequalities() -> None:
    match = {"$and": [{"status": "open"}, {"_id": 7}, {"closed_at": None}, {"message_count": {"$lte": 9}}]}
    assert _index_friendly(match) == {
        "_id": 7,
        "status": {"$not": {"$ne": "open"}},
        "closed_at": {"$not": {"$ne": None}},
        "message_count": {"$lte": 9},
    }


def test_it_keeps_plain_equalities_when_no_single_pk_is_pinned() -> None:
    assert _index_friendly({"$and": [{"conversation_id": 3}, {"key": "k"}]}) == {"conversation_id": 3, "key": "k"}
    pinned_to_many = {"_id": {"$in": [1, 2]}, "status": "open"}
    assert _index_friendly(pinned_to_many) == pinned_to_many


def test_it_matches_a_pinned_document_by_its_checks_alone(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    Conversation.objects.filter(pk=conversation.pk).update(rating="up")
    base = Conversation.objects.filter(pk=conversation.pk)
    assert base.filter(closed_at=None, escalated=False, rating="up").update(summary="matched") == 1
    assert base.filter(closed_at=None, rating="down").update(summary="wrong rating") == 0
    assert base.filter(escalated=True).update(summary="wrong flag") == 0
    assert base.filter(closed_at__isnull=False).update(summary="not closed") == 0
    assert Conversation.objects.get(pk=conversation.pk).summary == "matched"


def test_it_drops_the_not_null_test_a_range_on_the_same_field_implies() -> None:
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    match = {"$and": [{"day": {"$gte": start, "$lte": end}}, {"day": {"$exists": True, "$ne": None}}]}
    assert _index_friendly(match) == {"day": {"$gte": start, "$lte": end}}
    assert _index_friendly({"n": {"$gt": 3, "$exists": True}}) == {"n": {"$gt": 3}}


def test_it_keeps_a_not_null_test_without_a_range_beside_it() -> None:
    alone = {"closed_at": {"$exists": True, "$ne": None}}
    assert _index_friendly(alone) == alone
    unbounded = {"closed_at": {"$gte": None, "$exists": True, "$ne": None}}
    assert _index_friendly(unbounded) == unbounded


def test_it_finds_the_same_rows_in_a_range_beside_rows_without_the_field(make_conversation: Any) -> None:
    now = timezone.now()
    inside, _ = make_conversation()
    outside, _ = make_conversation()
    make_conversation()  # never closed: closed_at is null
    Conversation.objects.filter(pk=inside.pk).update(closed_at=now - timedelta(days=1))
    Conversation.objects.filter(pk=outside.pk).update(closed_at=now - timedelta(days=10))
    window = Conversation.objects.filter(closed_at__gte=now - timedelta(days=2), closed_at__lte=now)
    assert list(window.values_list("pk", flat=True)) == [inside.pk]
    assert Conversation.objects.filter(closed_at__lte=now).count() == 2


def test_it_puts_a_list_of_pks_before_the_other_conditions() -> None:
    shaped = _index_friendly({"$and": [{"status": {"$in": ["open", "closed"]}}, {"_id": {"$in": [7, 9]}}]})
    assert list(shaped) == ["_id", "status"]
    ranged = _index_friendly({"$and": [{"status": "open"}, {"_id": {"$gt": 7}}]})
    assert list(ranged) == ["status", "_id"]


_GROUPED = [
    {"$match": {"day": {"$gte": 1}}},
    {"$group": {"n": {"$sum": "$conversations"}, "_id": {"question_key": "$question_key"}}},
    {"$addFields": {"question_key": "$_id.question_key"}},
    {"$unset": "_id"},
    {"$project": {"question_key": 1, "n": "$n"}},
]


def test_it_sorts_and_cuts_a_groups_output_before_renaming_its_fields() -> None:
    tail = [{"$sort": {"n": -1, "question_key": 1}}, {"$skip": 10}, {"$limit": 10}]
    shaped = _sorted_before_renames([*_GROUPED, *tail])
    assert shaped == [
        *_GROUPED[:2],
        {"$sort": {"n": -1, "_id.question_key": 1}},
        {"$skip": 10},
        {"$limit": 10},
        *_GROUPED[2:],
    ]


@pytest.mark.parametrize(
    "renaming",
    [
        [{"$addFields": {"question_key": {"$toUpper": "$_id.question_key"}}}],  # computed
        [{"$unset": ["question_key"]}],  # removed
        [{"$project": {"n": 1}}],  # left out
        [{"$project": {"question_key": "$$ROOT.q"}}],  # a variable
        [{"$addFields": {"question_key.part": 1}}],  # a path into it
    ],
)
def test_it_leaves_the_order_where_a_sort_key_is_not_a_plain_rename(renaming: list[dict[str, Any]]) -> None:
    pipeline = [*_GROUPED[:2], *renaming, {"$sort": {"question_key": 1}}, {"$limit": 3}]
    assert _sorted_before_renames(pipeline) == pipeline


def test_it_leaves_a_pipeline_without_a_group_or_a_sort_alone() -> None:
    plain = [{"$match": {"a": 1}}, {"$addFields": {"b": "$a"}}, {"$sort": {"b": 1}}]
    assert _sorted_before_renames(plain) == plain
    unsorted = [*_GROUPED, {"$limit": 3}]
    assert _sorted_before_renames(unsorted) == unsorted


def test_the_top_questions_query_sorts_before_it_renames(on_mongodb: bool) -> None:
    from django.db.models import Sum

    from support.models import DailyQuestionRollup

    day = timezone.now().date()
    for key, n in (("b", 3), ("a", 3), ("c", 5), ("d", 1)):
        DailyQuestionRollup.objects.create(day=day, question_key=key, conversations=n)
    top = (
        DailyQuestionRollup.objects.values("question_key")
        .annotate(n=Sum("conversations"))
        .order_by("-n", "question_key")
    )
    with CaptureQueriesContext(connection) as queries:
        rows = list(top[:3])
    assert rows == [{"question_key": "c", "n": 5}, {"question_key": "a", "n": 3}, {"question_key": "b", "n": 3}]
    if on_mongodb:
        pipeline = _pipeline_of("support_rollup_questions", queries)
        assert pipeline.index("'$sort'") < pipeline.index("'$addFields'")


def test_it_reads_a_querys_rows_past_the_drivers_first_batch_in_one_command(make_conversation: Any) -> None:
    from tests.fakes.commands import database_commands

    conversation, _ = make_conversation()
    Message.objects.bulk_create(
        Message(conversation=conversation, role="user", content=f"turn {n}") for n in range(150)
    )
    with database_commands() as commands:
        turns = list(Message.objects.filter(conversation=conversation))
    assert len(turns) == 150
    assert len(commands.sent) == 1, [name for name, _ in commands.sent]
