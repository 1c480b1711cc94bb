"""What the self-refreshing staff queue asks for besides its table: how many escalations are new."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from support.models import QUEUE_STATUSES, Conversation
from support.selectors.scope import conversation_scope


def queue_escalations_since(*, since: datetime, user: Any = None) -> int:
    """Tickets still waiting for a person that were escalated after `since` (the tab title's "(2) Queue");
    with `user`, only of the businesses that staff user may see."""
    waiting = Conversation.objects.filter(status__in=list(QUEUE_STATUSES), escalated_at__gt=since)
    if user is not None:
        waiting = conversation_scope(waiting, user=user)
    return waiting.count()
