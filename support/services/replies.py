"""Writes of the human handoff: a staff member's reply in the conversation, taking it over from the bot and
handing it back, and the widget's "still here" stamp."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from support.models import QUEUE_STATUSES, Conversation, HandledBy, Message, MessageOrigin, Role, Status
from support.services.conversations import conversation_transition
from support.services.first_response import conversation_first_response_mark
from support.services.messages import Turn, message_log
from support.services.notifications import REPLIED, customer_away_reply_queue, notification_publish

#: A customer's turn (and, without Redis, a poll) writes customer_last_seen_at at most this often per conversation.
SEEN_WRITE_INTERVAL = timedelta(seconds=30)


def conversation_reply(*, conversation: Conversation, author: Any, content: str, hand_back: bool = False) -> Message:
    """Store a staff member's reply (Role.AGENT: no model, price, tokens or cost) and the state it implies.

    A person now owns the conversation (handled_by=human; with `hand_back` the bot answers again instead),
    an unassigned ticket is assigned to the author, and a ticket nobody was working on (closed or
    auto-resolved) is back in the queue as in_progress: one conversation_transition, so each change is a
    ticket event and parallel replies assign the ticket once. The state changes first: if storing the text
    then fails, the bot is already silent and the reply can simply be sent again.
    """
    if not content.strip():
        raise ValueError("A reply needs some text.")

    def taken(current: Conversation) -> dict[str, Any]:
        wanted: dict[str, Any] = {"handled_by": HandledBy.BOT if hand_back else HandledBy.HUMAN}
        if current.assigned_to_id is None:
            wanted["assigned_to"] = author
        if current.status not in QUEUE_STATUSES:
            wanted["status"] = Status.IN_PROGRESS
        return wanted

    conversation_transition(conversation=conversation, changes=taken, actor=author)
    [message] = message_log(
        conversation=conversation,
        turns=[Turn(role=Role.AGENT, content=content, priced=False, origin=MessageOrigin.AGENT, author=author)],
    )
    conversation_first_response_mark(conversation=conversation, at=message.created_at)
    notification_publish(event=REPLIED, conversation=conversation, data={"message_id": str(message.pk)})
    customer_away_reply_queue(conversation=conversation, message=message)
    return message


def conversation_handoff(*, conversation: Conversation, handled_by: str, actor: Any) -> Conversation:
    """Take the conversation over (handled_by=human: the bot stays silent) or hand it back to the bot."""
    if handled_by not in HandledBy.values:
        raise ValueError(f"handled_by must be one of {', '.join(HandledBy.values)}, got {handled_by!r}")
    conversation_transition(conversation=conversation, changes={"handled_by": handled_by}, actor=actor)
    return conversation


def conversation_seen(*, conversation: Conversation, at: datetime | None = None) -> bool:
    """Note that the customer's widget is open (a poll or a turn): at most one write per SEEN_WRITE_INTERVAL.

    Judged first on the row in memory, so a widget polling every few seconds costs no write at all; the
    conditional update keeps parallel polls to one write. Not a state change: no event, updated_at kept."""
    now = at or timezone.now()
    stale_before = now - SEEN_WRITE_INTERVAL
    last = conversation.customer_last_seen_at
    if last is not None and last > stale_before:
        return False
    written = Conversation.objects.filter(
        Q(customer_last_seen_at__isnull=True) | Q(customer_last_seen_at__lte=stale_before), pk=conversation.pk
    ).update(customer_last_seen_at=now)
    if written:
        conversation.customer_last_seen_at = now
    return bool(written)
