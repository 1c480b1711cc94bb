"""support.db.writes_are_atomic: whether the write path gets a transaction must not hang on one `hello`.

django-mongodb-backend asks the server once per connection (`features._supports_transactions`, cached).
SecantusDB answers `hello` without its replica set's name while it shuts down, so a thread that asked in
that moment ran without transactions for the rest of its life: after the next outage a conversation's
counters were two turns ahead of its stored turns (tests/e2e/test_faults.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import connection

from support import db

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_answer(on_mongodb: bool) -> Iterator[None]:
    if not on_mongodb:
        pytest.skip("SQLite always has transactions; the question is MongoDB's")
    saved = db._transactions_seen
    db._transactions_seen = False
    yield
    db._transactions_seen = saved
    connection.features.__dict__.pop("_supports_transactions", None)
    connection.features.__dict__.pop(db.ASKED_AT, None)


def _answer_in_a_thread(cached: bool) -> bool:
    """writes_are_atomic() on a thread whose connection cached `cached` as the server's answer."""
    from django.db import connections

    answers: list[bool] = []

    def ask() -> None:
        try:
            connection.features.__dict__["_supports_transactions"] = cached
            answers.append(db.writes_are_atomic())
        finally:
            connections.close_all()

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join()
    return answers[0]


def test_a_replica_set_once_seen_keeps_its_transactions_when_a_thread_heard_standalone(fresh_answer: None) -> None:
    assert _answer_in_a_thread(cached=True)
    assert _answer_in_a_thread(cached=False), "a stopping server's standalone answer must not switch them off"


def test_a_standalone_answer_is_asked_again_later(fresh_answer: None, monkeypatch: pytest.MonkeyPatch) -> None:
    features = connection.features
    features.__dict__["_supports_transactions"] = 0  # a "no" we can tell from the server's own (a bool)
    assert not db.writes_are_atomic()
    assert features.__dict__["_supports_transactions"] == 0 and not isinstance(
        features.__dict__["_supports_transactions"], bool
    ), "asked again at once: a standalone server would pay a round trip per write"
    monkeypatch.setattr(db, "TRANSACTIONS_RECHECK_S", 0.0)
    db.writes_are_atomic()
    assert isinstance(features.__dict__["_supports_transactions"], bool), "the old answer must be asked again"
