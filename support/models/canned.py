"""Canned replies: answers staff insert into the reply composer, managed in the admin."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CannedReply(models.Model):
    """One ready-made answer; the ticket page's picker offers the active ones, by title."""

    title = models.CharField(
        max_length=200, help_text="How staff find it in the composer's picker, e.g. 'Refund: how long it takes'."
    )
    content = models.TextField(
        help_text="The reply in Markdown (**bold**, *italic*, lists, `code`, http(s) links), as the customer "
        "will read it. It is inserted into the composer, where staff can edit it before sending."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive replies are kept but not offered in the picker.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "support_canned_replies"
        ordering = ["title"]
        verbose_name_plural = "canned replies"
        indexes = [models.Index(fields=["is_active", "title"], name="canned_active_title_idx")]

    def __str__(self) -> str:
        return self.title
