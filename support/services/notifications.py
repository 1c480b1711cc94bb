"""Telling people: webhooks and mail for what happens to a conversation, off the request path.

`notification_publish` is called by services once the write is made; it only enqueues (on transaction
commit), so a dead or hanging receiver or mail server never slows a request. The task queue (support/tasks.py)
then creates the webhook deliveries (support/services/webhooks.py) and sends the mail written here. Sent mail
is a ticket event (`email_sent`), appended like every other.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from support.models import Conversation, EventField, Message, Role, Status, TicketEvent
from support.selectors.poll import conversation_last_seen

logger = logging.getLogger(__name__)

ESCALATED = "conversation.escalated"
ASSIGNED = "conversation.assigned"
REPLIED = "conversation.replied"
CUSTOMER_REPLIED = "conversation.customer_replied"
CLOSED = "conversation.closed"
BUDGET_THRESHOLD = "budget.threshold"

#: A customer whose widget has not polled (or sent a turn) for this long has left: a staff reply is mailed.
CUSTOMER_AWAY_AFTER = timedelta(minutes=2)
#: The away-reply mail shows the conversation's last this-many turns.
AWAY_REPLY_TURNS = 6


def ticket_url(conversation: Conversation) -> str:
    path = reverse("dashboard:ticket", kwargs={"conversation_id": str(conversation.pk)})
    return f"{settings.SUPPORT_SITE_URL}{path}"


def _conversation_data(conversation: Conversation) -> dict[str, Any]:
    assignee = conversation.assigned_to
    return {
        "id": str(conversation.pk),
        "status": conversation.status,
        "escalated": conversation.escalated,
        "escalation_reason": conversation.escalation_reason,
        "handled_by": getattr(conversation, "handled_by", None),
        "assigned_to": assignee.get_username() if assignee is not None else None,
        "summary": conversation.summary,
        "url": ticket_url(conversation),
    }


def notification_payload(
    *, event: str, conversation: Conversation | None, data: dict[str, Any] | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """The webhook body (Standard Webhooks' recommended shape: type, timestamp, data)."""
    body: dict[str, Any] = dict(data or {})
    if conversation is not None:
        body["conversation"] = _conversation_data(conversation)
    return {"type": event, "timestamp": (at or timezone.now()).isoformat(), "data": body}


def notification_publish(*, event: str, conversation: Conversation | None, data: dict[str, Any] | None = None) -> None:
    """Queue webhooks (and, for an escalation, the staff mail) for `event`, once the current write commits.

    The payload is taken now, so it shows the state this event produced even if the queue runs later.
    Never raises: a queue that cannot be reached is logged, and the request goes on.
    """
    payload = notification_payload(event=event, conversation=conversation, data=data)
    conversation_id = None if conversation is None else str(conversation.pk)

    def enqueue() -> None:
        from support import tasks  # the tasks module imports services: imported when first used

        try:
            tasks.notification_fanout(event, payload, conversation_id)
        except Exception:  # the write is done; a lost notification must not fail the request
            logger.exception("could not queue the %s notification for conversation %s", event, conversation_id)

    transaction.on_commit(enqueue)


def customer_away_reply_queue(*, conversation: Conversation, message: Message) -> bool:
    """Queue the away-reply mail for a staff reply, once it commits, if the customer has left the widget
    (no poll or turn for CUSTOMER_AWAY_AFTER) and gave an address. True when it was queued."""
    seen = conversation_last_seen(conversation=conversation)  # the poll's stamp may still be in the cache
    if not conversation.contact_email or (seen is not None and timezone.now() - seen < CUSTOMER_AWAY_AFTER):
        return False
    conversation_id, message_id = str(conversation.pk), str(message.pk)

    def enqueue() -> None:
        from support import tasks  # the tasks module imports services: imported when first used

        try:
            tasks.customer_away_reply(conversation_id, message_id)
        except Exception:  # the reply is stored and shows in the widget; the mail is a courtesy
            logger.exception("could not queue the away reply for conversation %s", conversation_id)

    transaction.on_commit(enqueue)
    return True


def notification_transition_publish(*, conversation: Conversation, updates: dict[str, Any]) -> None:
    """The events one state transition (services.conversation_transition) produced: escalated, assigned,
    closed. `updates` are the fields it wrote; `conversation` already holds the new values."""
    if updates.get("escalated") is True or updates.get("escalated_at"):
        notification_publish(event=ESCALATED, conversation=conversation)
    if "assigned_to" in updates and updates["assigned_to"] is not None:
        notification_publish(event=ASSIGNED, conversation=conversation)
    if updates.get("status") == Status.CLOSED:
        notification_publish(event=CLOSED, conversation=conversation)


def notification_mail_send(
    *, conversation: Conversation, to: list[str], template: str, subject: str, context: dict[str, Any]
) -> bool:
    """Send templates/email/<template>.txt (+ .html) to `to` and record it as an `email_sent` ticket event."""
    if not to:
        return False
    context = {"conversation": conversation, "ticket_url": ticket_url(conversation), **context}
    mail = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
    )
    mail.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    mail.send()
    TicketEvent.objects.create(
        conversation=conversation,
        actor=None,
        actor_label="system",
        field=EventField.EMAIL_SENT,
        old_value="",
        new_value=f"{template} to {', '.join(to)}",
    )
    return True


def escalation_recipients(conversation: Conversation) -> list[str]:
    """The assignee when they have an address, else SUPPORT_NOTIFY_EMAILS."""
    email = str(getattr(conversation.assigned_to, "email", "") or "")
    if email:
        return [email]
    return list(settings.SUPPORT_NOTIFY_EMAILS)


def escalation_mail_send(*, conversation: Conversation) -> bool:
    """Tell staff a conversation needs a person. False when nobody is set to hear of it."""
    reason = conversation.get_escalation_reason_display() or "Escalated"
    turns = list(conversation.messages.order_by("-created_at", "-pk")[:AWAY_REPLY_TURNS])[::-1]
    return notification_mail_send(
        conversation=conversation,
        to=escalation_recipients(conversation),
        template="escalation",
        subject=f"[{settings.SUPPORT_PRODUCT_NAME} Support] Needs a person: {conversation.summary or reason}"[:150],
        context={"reason": reason, "detail": conversation.escalation_detail, "turns": turns},
    )


def customer_away_reply_send(*, conversation: Conversation, message: Message) -> bool:
    """Mail a staff reply, with the last turns, to a customer who left the widget and gave an address.

    The caller decides that the customer has left (CORE's polling: no poll for 2 minutes); this sends
    and records it. False when the conversation has no contact email."""
    if not conversation.contact_email:
        return False
    turns = list(
        conversation.messages.filter(created_at__lte=message.created_at).order_by("-created_at", "-pk")[
            :AWAY_REPLY_TURNS
        ]
    )[::-1]
    author: Any = getattr(message, "author", None)  # Message.author arrives with the staff replies (issue 12)
    first_name = str(getattr(author, "first_name", "") or "").strip()
    agent = first_name or "Our support team"
    return notification_mail_send(
        conversation=conversation,
        to=[conversation.contact_email],
        template="away_reply",
        subject=f"{agent} replied to your {settings.SUPPORT_PRODUCT_NAME} support question",
        context={"agent": agent, "message": message, "turns": turns, "customer_role": Role.USER},
    )
