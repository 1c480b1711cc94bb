"""The task queue's jobs (Huey, huey.contrib.djhuey; `manage.py run_huey` finds this module).

Each task takes ids, not objects, and reads the rows itself: it may run seconds (or, after a restart,
minutes) after it was queued. Writes go through services like everywhere else.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from support import selectors, services
from support.models import Conversation, Message
from support.services import conversation_seen_flush as services_seen_flush
from support.services import idempotency_prune
from support.services.conversations import conversations_outcome_settle
from support.services.notifications import ESCALATED, customer_away_reply_send, escalation_mail_send
from support.services.webhooks import webhook_deliveries_create, webhook_deliveries_due, webhook_delivery_attempt

logger = logging.getLogger(__name__)

__all__ = ["HUEY", "queue_backlog"]


@db_task()
def notification_fanout(event: str, payload: dict[str, Any], conversation_id: str | None) -> None:
    """One event: a delivery per subscribed webhook endpoint, each sent by its own task; the staff mail."""
    for delivery in webhook_deliveries_create(event=event, payload=payload):
        webhook_deliver(str(delivery.pk))
    if event == ESCALATED and conversation_id is not None:
        escalation_mail(conversation_id)


@db_task()
def webhook_deliver(delivery_id: str) -> None:
    """Attempt one delivery now; a failure leaves it pending for webhook_retry_due."""
    webhook_delivery_attempt(delivery_id=delivery_id)


@db_periodic_task(crontab(minute="*"))
def webhook_retry_due() -> None:
    """Every minute: queue the deliveries whose backoff has run out (their next attempt is due)."""
    for delivery_id in webhook_deliveries_due(now=timezone.now()):
        webhook_deliver(str(delivery_id))


# A mail server that is down for a moment gets three more tries, a minute apart and growing.
@db_task(retries=3, retry_delay=60, retry_backoff=2)
def escalation_mail(conversation_id: str) -> None:
    conversation = Conversation.objects.select_related("assigned_to").filter(pk=conversation_id).first()
    if conversation is not None:
        escalation_mail_send(conversation=conversation)


@db_task(retries=3, retry_delay=60, retry_backoff=2)
def customer_away_reply(conversation_id: str, message_id: str) -> None:
    """The away-reply mail (customer_away_reply_send), for the coordinator to queue from the reply service."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    message = Message.objects.filter(pk=message_id, conversation_id=conversation_id).first()
    if conversation is not None and message is not None:
        customer_away_reply_send(conversation=conversation, message=message)


@db_periodic_task(crontab(minute="17"))
def idempotency_keys_prune() -> int:
    """Hourly: drop Idempotency-Keys older than SUPPORT_IDEMPOTENCY_TTL_HOURS (as `manage.py prune_idempotency`)."""
    older_than = timezone.now() - timedelta(hours=settings.SUPPORT_IDEMPOTENCY_TTL_HOURS)
    deleted = idempotency_prune(older_than=older_than)
    if deleted:
        logger.info("pruned %d idempotency keys older than %s", deleted, older_than.isoformat())
    return deleted


def queue_backlog() -> int:
    """Tasks waiting for a worker (not the scheduled ones): one COUNT on SQLite, one LLEN on Redis."""
    return int(HUEY.pending_count())


# --- Retention (issue 15) --------------------------------------------------------------------
@db_periodic_task(crontab(hour="3", minute="29"))
def conversations_retention_purge() -> int:
    """Daily at 03:29 UTC: delete the conversations older than SUPPORT_RETENTION_DAYS (off when unset), as
    `manage.py purge` does; returns how many."""
    from support.services import conversations_purge  # here, not at the top: this block merges on its own

    days = settings.SUPPORT_RETENTION_DAYS
    if not days:
        return 0
    result = conversations_purge(older_than=timedelta(days=days), operator="retention job")
    if result.conversations:
        logger.info("retention: deleted %d conversations older than %d days", result.conversations, days)
    return result.conversations


@db_periodic_task(crontab(minute="*"))
def conversation_seen_flush() -> int:
    """Every minute: write the widgets' last-poll stamps from Redis to customer_last_seen_at, in one batch
    (services.conversation_seen_flush), instead of a database write per open widget."""
    return services_seen_flush()


# --- Honest outcomes (issue 14) -------------------------------------------------------------------
@db_periodic_task(crontab(minute="*/5"))
def outcomes_settle() -> int:
    """Every 5 minutes: open conversations whose SUPPORT_RESOLUTION_WINDOW_HOURS ran out become assumed
    (or abandoned); support.outcomes has the rules."""
    moved = conversations_outcome_settle()
    if moved:
        logger.info("settled the outcome of %d conversations", moved)
    return moved


# --- Bot checks (issue 14) ------------------------------------------------------------------------
@db_task()
def bot_check_run(run_id: str) -> None:
    """Execute a bot-check run started from the dashboard (services.botcheck_run_execute)."""
    run = selectors.botcheck_run_get(run_id=run_id)
    if run is not None:
        services.botcheck_run_execute(run=run)


@db_task()
def rollups_fold_task() -> None:
    """Add the turns stored since the last fold to the usage and grounding rollups (services.rollups_fold)."""
    from support.services.rollup_fold import rollups_fold

    rollups_fold()


@db_periodic_task(crontab(minute="*"))
def rollups_fold_periodic() -> None:
    """Every minute: fold what a fold request lost (a web process that died before queuing one)."""
    rollups_fold_task.call_local()
