"""The record of every deletion of conversations (retention and erasure): who, when, what, how many rows."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from support.models.choices import ErasureKind


class ErasureRecord(models.Model):
    """One run of services.conversations_delete: the audit trail of a purge or an erasure.

    It names the selector as given (a user id, an email, a conversation id, an age): a data-protection
    audit must show which request was honoured. It never holds the erased content (no messages, no
    summaries, no conversation ids of a purge). `days` lists the UTC days whose conversations were
    deleted: their rollups keep the deleted conversations, and rebuild_rollups keeps those days' rows.
    """

    kind = models.CharField(max_length=16, choices=ErasureKind.choices)
    operator = models.CharField(
        max_length=150, help_text="Who ran it: the --operator given, the OS user, the admin user, or 'retention job'."
    )
    matched = models.JSONField(
        default=dict,
        help_text="What was asked for, as given: {'user_id': ...}, {'email': ...}, {'conversation': ...}, "
        "{'older_than_days': N, 'before': ISO time} or {'conversations': [ids]} (the admin).",
    )
    counts = models.JSONField(
        default=dict, help_text="Rows deleted per table, e.g. {'conversations': 2, 'messages': 14, ...}."
    )
    days = models.JSONField(default=list, help_text="The UTC days (YYYY-MM-DD) the deleted conversations started on.")
    created_at = models.DateTimeField(default=timezone.now, help_text="When the deletion started (UTC).")
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="When it finished; empty if it stopped part way (run it again)."
    )

    class Meta:
        db_table = "support_erasure_records"
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["-created_at"], name="erasure_created_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.operator} at {self.created_at:%Y-%m-%d %H:%M}"
