"""Deleting conversations: the retention purge, a data subject's erasure and the admin's delete, one way.

Every deletion goes through conversations_delete, which
- deletes a batch of conversations at a time (RETENTION_BATCH ids), each table filtered by the indexed
  conversation_id or by _id, so neither database scans a collection per row;
- deletes the rows that point at a conversation before the conversation itself, so a run that stops part
  way leaves no orphans and is finished by running it again;
- never touches the daily rollups: analytics keep counting the deleted conversations and their cost, and
  the days they started on are recorded (ErasureRecord.days) so rebuild_rollups keeps those days' rows;
- writes one ErasureRecord: who, when, what was asked for and how many rows per table, never the content.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from support import rollups, selectors
from support.models import (
    Conversation,
    ErasureKind,
    ErasureRecord,
    IdempotencyRecord,
    Message,
    TicketEvent,
    TicketNote,
    WebhookDelivery,
)
from support.services.poll import poll_state_forget
from support.services.rollup_fold import rollups_fold

logger = logging.getLogger(__name__)

#: Conversations deleted per round trip: MongoDB's $in of 500 ObjectIds stays far below its 16 MB limit,
#: and SQLite's 32,766 bound parameters.
RETENTION_BATCH = 500

ProgressCallback = Callable[[int, int], None]


@dataclass
class DeletionResult:
    """What a deletion removed (or, in a dry run, would remove), per table."""

    counts: Counter[str] = field(default_factory=Counter)
    days: set[date] = field(default_factory=set)
    record: ErasureRecord | None = None
    dry_run: bool = False

    @property
    def conversations(self) -> int:
        return self.counts["conversations"]


def _dependants_delete(ids: list[Any]) -> Counter[str]:
    """Delete the rows of `ids`' conversations that point at them; returns how many per table."""
    counts: Counter[str] = Counter()
    # Filtered by conversation_id: every table below has an index that starts with it.
    counts["idempotency_records"] = IdempotencyRecord.objects.filter(conversation_id__in=ids).delete()[0]
    counts["ticket_events"] = TicketEvent.objects.filter(conversation_id__in=ids).delete()[0]
    counts["ticket_notes"] = TicketNote.objects.filter(conversation_id__in=ids).delete()[0]
    # Message.delete() would look for rows pointing at each message (Conversation.rated_message,
    # IdempotencyRecord.user_message), filtering on unindexed columns: a collection scan per batch on
    # MongoDB. Both point within these same conversations and are cleared or gone by now, so the
    # messages are deleted by the indexed conversation_id alone.
    Conversation.objects.filter(pk__in=ids).exclude(rated_message=None).update(rated_message=None)
    messages = Message.objects.filter(conversation_id__in=ids)
    counts["messages"] = messages._raw_delete(messages.db)
    return counts


#: The counts' names (ErasureRecord.counts) of the tables a conversation's collector may also delete from.
_TABLE_NAMES = {
    Conversation._meta.label: "conversations",
    Message._meta.label: "messages",
    TicketEvent._meta.label: "ticket_events",
    TicketNote._meta.label: "ticket_notes",
    IdempotencyRecord._meta.label: "idempotency_records",
}


def _batch_delete(ids: list[Any]) -> Counter[str]:
    with transaction.atomic():  # one transaction per batch on SQLite; MongoDB needs none (see module doc)
        counts = _dependants_delete(ids)
        # The conversations last, through Django's collector: a row another table added since (a turn
        # stored meanwhile) is deleted with them by its on_delete rule rather than left dangling.
        _total, per_model = Conversation.objects.filter(pk__in=ids).delete()
    poll_state_forget(conversation_ids=ids)
    for label, number in per_model.items():
        counts[_TABLE_NAMES.get(label, label)] += number  # another app's rows cascade under their own label
    return +counts


#: What an erased conversation's summary (the customer's first message) becomes in stored webhook payloads.
ERASED = "[erased]"


def _webhook_payloads_scrub(ids: list[Any]) -> int:
    """Blank the customer's words (the summary) in the stored webhook payloads about these conversations.

    The deliveries stay (the endpoint's log; a pending retry still goes out, without the summary). The
    payload is not indexed: one scan of the deliveries per batch, and only for an erasure request."""
    scrubbed = 0
    about = WebhookDelivery.objects.filter(payload__data__conversation__id__in=[str(pk) for pk in ids])
    for delivery in about.only("pk", "payload"):
        conversation = delivery.payload["data"]["conversation"]
        if conversation.get("summary") in ("", ERASED):
            continue
        conversation["summary"] = ERASED
        WebhookDelivery.objects.filter(pk=delivery.pk).update(payload=delivery.payload)
        scrubbed += 1
    return scrubbed


def _batch_count(ids: list[Any]) -> Counter[str]:
    return +Counter(
        {
            "conversations": Conversation.objects.filter(pk__in=ids).count(),
            "messages": Message.objects.filter(conversation_id__in=ids).count(),
            "ticket_events": TicketEvent.objects.filter(conversation_id__in=ids).count(),
            "ticket_notes": TicketNote.objects.filter(conversation_id__in=ids).count(),
            "idempotency_records": IdempotencyRecord.objects.filter(conversation_id__in=ids).count(),
        }
    )


def _record_save(result: DeletionResult, *, kind: str, operator: str, matched: dict[str, Any]) -> None:
    """Create the run's record, or bring its counts up to date (after each batch: a run that stops part
    way still shows what it deleted)."""
    days = sorted(day.isoformat() for day in result.days)
    if result.record is None:
        result.record = ErasureRecord.objects.create(
            kind=kind, operator=operator[:150], matched=matched, counts=dict(result.counts), days=days
        )
    else:
        ErasureRecord.objects.filter(pk=result.record.pk).update(counts=dict(result.counts), days=days)


def conversations_delete(
    *,
    conversations: QuerySet[Conversation],
    kind: str,
    operator: str,
    matched: dict[str, Any],
    dry_run: bool = False,
    batch_size: int = RETENTION_BATCH,
    progress: ProgressCallback | None = None,
) -> DeletionResult:
    """Delete `conversations` and every row that belongs to them, leaving the rollups as they are.

    A dry run counts the rows instead and writes nothing. An erasure is recorded even when nothing
    matched (the request was honoured); a purge or an admin delete only when it deleted something.
    """
    result = DeletionResult(dry_run=dry_run)
    if not dry_run:
        # Turns stored moments ago join the rollups first: the rollups keep counting what is deleted.
        rollups_fold()
    total = conversations.count() if progress is not None else 0
    done = 0
    for rows in selectors.conversation_id_batches(conversations, batch_size=max(batch_size, 1)):
        ids = [pk for pk, _created in rows]
        result.days.update(rollups.utc_day(created) for _pk, created in rows)
        if dry_run:
            result.counts.update(_batch_count(ids))
        else:
            # The days go on record before their conversations go: rebuild_rollups must keep them even
            # if this run dies part way through the batch.
            _record_save(result, kind=kind, operator=operator, matched=matched)
            result.counts.update(_batch_delete(ids))
            if kind == ErasureKind.ERASURE:
                result.counts["webhook_payloads_scrubbed"] += _webhook_payloads_scrub(ids)
                result.counts = +result.counts  # drops the zero
            _record_save(result, kind=kind, operator=operator, matched=matched)
        done += len(rows)
        if progress is not None:
            progress(done, max(total, done))
    if not dry_run and result.record is None and kind == ErasureKind.ERASURE:
        _record_save(result, kind=kind, operator=operator, matched=matched)
    if result.record is not None:
        finished = timezone.now()
        ErasureRecord.objects.filter(pk=result.record.pk).update(finished_at=finished)
        result.record.finished_at = finished
        logger.info("%s by %s deleted %s", kind, operator, dict(result.counts))
    return result


def conversations_admin_delete(*, conversations: QuerySet[Conversation], operator: str) -> DeletionResult:
    """The admin's delete (a change page's Delete button, or the list's "Delete selected" action)."""
    # The chosen ids, fixed now: the changelist's queryset carries its filters, search and ordering.
    pks = list(conversations.values_list("pk", flat=True))
    return conversations_delete(
        conversations=Conversation.objects.filter(pk__in=pks),
        kind=ErasureKind.ADMIN,
        operator=operator,
        matched={"conversations": [str(pk) for pk in pks]},
    )


def conversations_purge(
    *,
    older_than: timedelta,
    operator: str,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = RETENTION_BATCH,
    progress: ProgressCallback | None = None,
) -> DeletionResult:
    """Delete the conversations started more than `older_than` ago (SUPPORT_RETENTION_DAYS, or by hand)."""
    before = (now or timezone.now()) - older_than
    return conversations_delete(
        conversations=selectors.conversations_older_than(before=before),
        kind=ErasureKind.PURGE,
        operator=operator,
        matched={"older_than_days": older_than.days, "before": before.isoformat()},
        dry_run=dry_run,
        batch_size=batch_size,
        progress=progress,
    )


def subject_erase(
    *,
    operator: str,
    user_id: str | None = None,
    email: str | None = None,
    conversation_id: str | None = None,
    dry_run: bool = False,
    batch_size: int = RETENTION_BATCH,
    progress: ProgressCallback | None = None,
) -> DeletionResult:
    """A data subject's erasure request: delete their conversations by one identifier (ValueError if not one)."""
    matched_by = {"user_id": user_id, "email": email, "conversation": conversation_id}
    conversations = selectors.conversations_of_subject(user_id=user_id, email=email, conversation_id=conversation_id)
    return conversations_delete(
        conversations=conversations,
        kind=ErasureKind.ERASURE,
        operator=operator,
        matched={name: value.strip() for name, value in matched_by.items() if value is not None},
        dry_run=dry_run,
        batch_size=batch_size,
        progress=progress,
    )
