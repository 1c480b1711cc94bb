"""Idempotency-Key records: one stored answer per key and conversation."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from support.models.conversations import Conversation, Message


class IdempotencyRecord(models.Model):
    """The stored answer to a request sent with an Idempotency-Key, replayed when it is retried."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the request body; a reused key with another body is refused."
    )
    response = models.JSONField(null=True, blank=True, help_text="Empty while the first request is running.")
    user_message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Chat: the customer's turn this key stored. A retry whose reply was never stored answers it "
        "again instead of storing the turn twice.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "support_idempotency"
        constraints = [
            models.UniqueConstraint(fields=["conversation", "key"], name="uniq_idempotency_conversation_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]  # idempotency_prune: no scan

    def __str__(self) -> str:
        return f"{self.key} on {self.conversation_id}"
