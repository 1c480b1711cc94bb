"""support.db.rows_insert: the turns of a request inserted with a statement prepared once per connection
(the ORM compiled bulk_create's INSERT on every request) must store what bulk_create stores, on both
databases, in one round trip."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.db.models.sql.query import Query
from django.utils import timezone

from support import db
from support.models import IdempotencyRecord, Message
from tests.fakes.round_trips import round_trips

pytestmark = pytest.mark.django_db

_SKIPPED = {"id"}


def _turn(conversation: Any, **fields: Any) -> Message:
    values = {
        "role": "assistant",
        "content": "Under My bookings.",
        "model": "claude-haiku-4-5",
        "output_tokens": 105,
        "cost_micros": 525,
        "cited_article_ids": ["a1", "a2"],
        "rollup_pending": True,
        "rollup_state": {"day": "2026-11-30", "status": "open"},
        "latency_ms": 812,
        "created_at": timezone.now(),
        **fields,
    }
    return Message(conversation=conversation, **values)


def _stored(message: Message) -> dict[str, Any]:
    row = Message.objects.get(pk=message.pk)
    return {f.attname: getattr(row, f.attname) for f in Message._meta.concrete_fields if f.attname not in _SKIPPED}


def test_it_stores_what_bulk_create_stores(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    at = timezone.now()
    ours, theirs = _turn(conversation, created_at=at), _turn(conversation, created_at=at)
    db.rows_insert(Message, [ours])
    Message.objects.bulk_create([theirs])
    assert ours.pk is not None and ours.pk != theirs.pk
    assert _stored(ours) == _stored(theirs)
    assert not ours._state.adding and ours._state.db == "default"


def test_it_inserts_several_rows_in_one_round_trip_and_gives_each_its_key(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    turns = [_turn(conversation, role="user", content="Where is my booking?", latency_ms=None), _turn(conversation)]
    with round_trips() as trips:
        db.rows_insert(Message, turns)
    assert len(trips) == 1, trips
    assert [Message.objects.get(pk=t.pk).content for t in turns] == ["Where is my booking?", "Under My bookings."]


def test_it_does_not_compile_an_insert_after_the_first_of_its_size(make_conversation: Any, monkeypatch: Any) -> None:
    conversation, _ = make_conversation()
    db.rows_insert(Message, [_turn(conversation), _turn(conversation)])

    def no_compiler(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the ORM compiled a query")

    monkeypatch.setattr(Query, "get_compiler", no_compiler)
    later = [_turn(conversation, content="Again."), _turn(conversation, content="And again.")]
    db.rows_insert(Message, later)
    monkeypatch.undo()
    assert Message.objects.filter(conversation=conversation, content__in=["Again.", "And again."]).count() == 2


def test_it_refuses_a_missing_required_value_and_stores_nothing(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    broken = _turn(conversation, role=None)
    with pytest.raises(db.DATABASE_ERRORS):
        db.rows_insert(Message, [_turn(conversation, content="Kept out."), broken])
    assert not Message.objects.filter(content="Kept out.").exists()


def test_a_row_a_unique_constraint_refuses_is_an_integrity_error(make_conversation: Any) -> None:
    # The Idempotency-Key's claim tells a key already used by this error, on both databases.
    conversation, _ = make_conversation()
    db.rows_insert(IdempotencyRecord, [IdempotencyRecord(conversation=conversation, key="pair-1", fingerprint="f")])
    with transaction.atomic(), pytest.raises(IntegrityError):
        db.rows_insert(IdempotencyRecord, [IdempotencyRecord(conversation=conversation, key="pair-1", fingerprint="g")])
    assert list(IdempotencyRecord.objects.values_list("fingerprint", flat=True)) == ["f"]
