"""The append-only history of a ticket: events and staff notes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from support.models.choices import (
    EventField,
)
from support.models.conversations import Conversation


class AppendOnlyModel(models.Model):
    """A history row: written once, never changed or deleted (a correction is a new row)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValueError(f"{str(self._meta.verbose_name_plural).capitalize()} are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError(f"{str(self._meta.verbose_name_plural).capitalize()} are append-only.")


class TicketEvent(AppendOnlyModel):
    """Append-only history of a ticket: who changed which field from what to what."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ticket_events",
        help_text="Empty when the widget or the bot made the change.",
    )
    actor_label = models.CharField(max_length=150, help_text="Username, or 'widget' / 'bot' / 'system'.")
    field = models.CharField(max_length=32, choices=EventField.choices)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "support_ticket_events"
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="event_conversation_created_idx")]

    def __str__(self) -> str:
        return f"{self.actor_label} changed {self.field}"


class TicketNote(AppendOnlyModel):
    """One staff note on a ticket. Append-only: a correction is a new note, so the timeline is the record."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="ticket_notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ticket_notes",
        help_text="The staff user who wrote it; empty once that user is deleted (author_label remains).",
    )
    author_label = models.CharField(max_length=150, help_text="The author's username when the note was written.")
    text = models.TextField(help_text="The note, as written; staff only, never shown to the customer.")
    created_at = models.DateTimeField(default=timezone.now, help_text="When the note was added (UTC).")

    class Meta:
        db_table = "support_ticket_notes"
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="note_conversation_created_idx")]

    def __str__(self) -> str:
        return f"{self.author_label}: {self.text[:60]}"
