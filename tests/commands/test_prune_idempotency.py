"""manage.py prune_idempotency: deletes the keys past SUPPORT_IDEMPOTENCY_TTL_HOURS and says how many."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from support.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def test_it_prunes_the_keys_older_than_the_ttl_and_prints_the_count(make_conversation: Any, settings: Any) -> None:
    settings.SUPPORT_IDEMPOTENCY_TTL_HOURS = 24
    conversation, _ = make_conversation()
    for key, hours in (("old", 25), ("older", 200), ("fresh", 23)):
        record = IdempotencyRecord.objects.create(conversation=conversation, key=key, fingerprint="f")
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(hours=hours))
    out = io.StringIO()

    call_command("prune_idempotency", stdout=out)

    assert "Pruned 2 idempotency keys" in out.getvalue()
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
