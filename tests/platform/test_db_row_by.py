"""support.db.row_by: a fetch by unique fields (the Idempotency-Key's conversation and key), compiled once per
connection and set of fields instead of by the ORM on every request, must find what the ORM finds, on both
databases."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models.sql.query import Query

from support import db
from support.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def _record(conversation: Any, key: str, **fields: Any) -> IdempotencyRecord:
    return IdempotencyRecord.objects.create(conversation=conversation, key=key, fingerprint="f" * 64, **fields)


def test_it_finds_the_row_whose_fields_all_match(make_conversation: Any) -> None:
    first, _ = make_conversation()
    second, _ = make_conversation()
    _record(first, "pair-1")
    wanted = _record(second, "pair-1", response={"messages": [{"id": "1"}]})
    _record(second, "pair-2")
    found = db.row_by(IdempotencyRecord, conversation=second.pk, key="pair-1")
    assert found == wanted
    assert found.response == {"messages": [{"id": "1"}]}
    assert found.created_at == IdempotencyRecord.objects.get(pk=wanted.pk).created_at


def test_it_answers_none_when_no_row_matches(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    other, _ = make_conversation()
    _record(other, "pair-1")
    assert db.row_by(IdempotencyRecord, conversation=conversation.pk, key="pair-1") is None
    assert db.row_by(IdempotencyRecord, conversation=other.pk, key="pair-9") is None


def test_it_does_not_compile_a_query_after_the_first_call(make_conversation: Any, monkeypatch: Any) -> None:
    conversation, _ = make_conversation()
    first, second = _record(conversation, "pair-1"), _record(conversation, "pair-2")
    assert db.row_by(IdempotencyRecord, conversation=conversation.pk, key="pair-1") == first

    def no_compiler(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the ORM compiled a query")

    monkeypatch.setattr(Query, "get_compiler", no_compiler)
    assert db.row_by(IdempotencyRecord, conversation=conversation.pk, key="pair-2") == second
