"""The first-response clock of an escalated ticket: stopped by a person's first reply."""

from __future__ import annotations

from datetime import datetime

from support.models import Conversation


def conversation_first_response_mark(*, conversation: Conversation, at: datetime) -> bool:
    """Record a person's reply at `at` as the first response, unless one is already recorded.

    Compare-and-set on an empty first_human_response_at, so of two concurrent replies only the first
    write counts. Returns True when this reply was the first; `conversation` is updated in memory.
    """
    marked = Conversation.objects.filter(pk=conversation.pk, first_human_response_at__isnull=True).update(
        first_human_response_at=at
    )
    if marked:
        conversation.first_human_response_at = at
    else:
        stored = Conversation.objects.filter(pk=conversation.pk).values_list("first_human_response_at", flat=True)
        conversation.first_human_response_at = stored.first()
    return bool(marked)
