"""What the self-refreshing staff queue asks for besides its table: how many escalations are new."""

from __future__ import annotations

from datetime import datetime

from support.models import QUEUE_STATUSES, Conversation


def queue_escalations_since(*, since: datetime) -> int:
    """Tickets still waiting for a person that were escalated after `since` (the tab title's "(2) Queue")."""
    return Conversation.objects.filter(status__in=list(QUEUE_STATUSES), escalated_at__gt=since).count()
