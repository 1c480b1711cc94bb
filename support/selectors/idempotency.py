"""Stored answers to retried conversation creates (Idempotency-Key)."""

from __future__ import annotations

from support.models import Conversation, IdempotencyRecord


def idempotency_record_get(*, conversation: Conversation, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(conversation=conversation, key=key).first()
