"""Issue 13: AND filters reach MongoDB as one document, which any MongoDB-compatible server serves from an
index (SecantusDB, the MongoDB leg here, scans the collection for an explicit $and)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from support import services
from support.db import _implicit_and
from support.models import Conversation


def test_it_merges_conditions_on_different_fields_and_operators_on_one_field() -> None:
    mql = {"$and": [{"day": {"$gte": 1}}, {"$and": [{"day": {"$exists": True}}, {"day": {"$ne": None}}]}, {"s": "w"}]}
    assert _implicit_and(mql) == {"day": {"$gte": 1, "$exists": True, "$ne": None}, "s": "w"}


@pytest.mark.parametrize(
    "mql",
    [
        {"$and": [{"a": {"$ne": None}}, {"a": {"$ne": 3}}]},  # one operator twice
        {"$and": [{"a": 1}, {"a": {"$ne": 3}}]},  # an equality and an operator
        {"$and": [{"$or": [{"a": 1}]}, {"$or": [{"b": 1}]}]},  # two $or
    ],
)
def test_it_keeps_the_and_where_one_document_could_not_say_the_same(mql: dict[str, Any]) -> None:
    assert _implicit_and(mql) == mql


@pytest.mark.django_db
def test_a_guarded_update_by_id_is_one_document_on_mongodb(on_mongodb: bool) -> None:
    if not on_mongodb:
        pytest.skip("SQLite: there is no query document")
    conversation, _ = services.conversation_create()
    with CaptureQueriesContext(connection) as queries:
        Conversation.objects.filter(pk=conversation.pk, status=conversation.status, summary="").update(summary="x")
    [update] = [q["sql"] for q in queries.captured_queries]
    assert "$and" not in update and "'_id': ObjectId(" in update
