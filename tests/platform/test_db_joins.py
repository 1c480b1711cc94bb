"""support.db.mongodb_match_before_joins: on MongoDB a select_related query filters before it joins, so a fetch
by pk reads one document instead of joining the whole collection; a filter on the joined row keeps its place."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from support.db import _reads_joined
from support.models import Conversation, Message

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
