"""services.idempotency_prune: keys past SUPPORT_IDEMPOTENCY_TTL_HOURS are deleted, a batch at a time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from support import services
from support.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def _records(conversation: Any, *, count: int, age: timedelta, prefix: str) -> None:
    for index in range(count):
        record = IdempotencyRecord.objects.create(conversation=conversation, key=f"{prefix}-{index}", fingerprint="f")
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)


def test_it_deletes_every_key_older_than_the_cutoff_and_keeps_the_newer_ones(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    _records(conversation, count=5, age=timedelta(hours=30), prefix="old")
    _records(conversation, count=2, age=timedelta(hours=1), prefix="new")

    pruned = services.idempotency_prune(older_than=timezone.now() - timedelta(hours=24), batch_size=2)

    assert pruned == 5
    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new-0", "new-1"]


def test_it_prunes_nothing_and_says_so_when_no_key_is_old_enough(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    _records(conversation, count=3, age=timedelta(hours=1), prefix="new")

    assert services.idempotency_prune(older_than=timezone.now() - timedelta(hours=24)) == 0
    assert IdempotencyRecord.objects.count() == 3


def test_a_pruned_key_is_free_for_a_new_request(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    record, first = services.idempotency_claim(conversation=conversation, key="k", fingerprint="f")
    services.idempotency_complete(record=record, response={"done": True})
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(days=2))

    services.idempotency_prune(older_than=timezone.now() - timedelta(days=1))

    _, first = services.idempotency_claim(conversation=conversation, key="k", fingerprint="other")
    assert first


def test_the_prune_filters_on_an_indexed_created_at() -> None:
    """MongoDB scans the whole collection for an unindexed filter; the prune must not."""
    indexed = [list(index.fields) for index in IdempotencyRecord._meta.indexes]
    assert ["created_at"] in indexed


def test_an_abandoned_chat_claim_stays_resumable_until_its_ttl_has_passed(make_conversation: Any) -> None:
    """A chat whose reply could not be stored keeps its key, so the client's retry resumes it instead of
    storing the customer's turn twice; the prune must not take that key early."""
    conversation, _ = make_conversation()
    record, _ = services.idempotency_claim(conversation=conversation, key="chat", fingerprint="f")
    turn = services.message_log(conversation=conversation, turns=[services.Turn(role="user", content="hi")])[0]
    services.idempotency_turn_attach(record=record, user_message=turn)
    services.idempotency_abandon(record=record)

    services.idempotency_prune(older_than=timezone.now() - timedelta(hours=24))

    kept = IdempotencyRecord.objects.get(pk=record.pk)
    assert services.idempotency_resume(record=kept, fingerprint="f")
