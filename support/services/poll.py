"""Writes of the widget's poll state (support/poll_cache.py): the version a poll's ETag is made of, renewed
after every commit that changes what a poll answers, and the widget's last-seen stamp, kept in Redis and
flushed to customer_last_seen_at in batches by a periodic task instead of one write per widget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from support import poll_cache
from support.models import Conversation

#: A poll renews the cached stamp at most this often; the away rule (2 minutes) is far coarser.
SEEN_CACHE_REFRESH = timedelta(seconds=10)
#: The flush pops this many conversations at a time.
SEEN_FLUSH_BATCH = 500


def poll_version_bump(*, conversation_id: object) -> None:
    """Every poll tag given for the conversation stops matching, now and again once the write commits.

    Called by the two writers of what a poll answers: services.messages (a new turn) and
    services.conversations' transition (handled_by, status, assignee). The renewal after the commit is
    the one that counts: a poll that read the version before it saw the rows cannot keep the old answer
    under the new version. The one now costs one cache write and means a process that dies between its
    commit and its on-commit callbacks still leaves the version changed."""
    poll_cache.version_replace(conversation_id)
    transaction.on_commit(lambda: poll_cache.version_replace(conversation_id))


def poll_state_forget(*, conversation_ids: list[Any]) -> None:
    """After conversations are deleted (services.retention): their polls read the database again (404)."""
    poll_cache.forget(conversation_ids)


def poll_token_remember(*, conversation: Conversation) -> None:
    """Cache the conversation's token hash, so its widget's unchanged polls are checked without a read."""
    poll_cache.token_remember(conversation.pk, conversation.token_hash)


def conversation_seen_cache_available() -> bool:
    """Whether the widget's poll stamps go to the cache (Redis) for the flush, not to the database."""
    return poll_cache.seen_store_available()


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def conversation_seen_cached(*, conversation_id: Any, seen_ms: int | None, at: datetime | None = None) -> bool:
    """The widget polled: note it in Redis (one round trip, at most every SEEN_CACHE_REFRESH) for the flush.

    `seen_ms` is the stamp the poll read with its state. False when nothing needed writing; when there is
    no Redis, or it failed, the stamp goes straight to the database (at most every 30 s)."""
    now = at or timezone.now()
    if seen_ms is not None and _ms(now) - seen_ms < SEEN_CACHE_REFRESH.total_seconds() * 1000:
        return False
    if poll_cache.seen_store(conversation_id, _ms(now)):
        return True
    from support.services.replies import SEEN_WRITE_INTERVAL

    stale_before = now - SEEN_WRITE_INTERVAL
    return bool(
        Conversation.objects.filter(
            Q(customer_last_seen_at__isnull=True) | Q(customer_last_seen_at__lte=stale_before), pk=conversation_id
        ).update(customer_last_seen_at=now)
    )


def conversation_seen_flush(*, batch: int = SEEN_FLUSH_BATCH) -> int:
    """Write the cached last-seen stamps to customer_last_seen_at; returns how many rows moved.

    Each conversation is popped from the dirty set once (parallel flushes share the work) and written only
    forward, so a stamp the turn path wrote meanwhile is never moved back. On a database error the popped
    conversations go back in the set for the next run."""
    written = 0
    while pks := poll_cache.dirty_pop(batch):
        try:
            for pk, ms in poll_cache.seen_many(pks).items():
                seen = datetime.fromtimestamp(ms / 1000, tz=UTC)
                written += Conversation.objects.filter(
                    Q(customer_last_seen_at__isnull=True) | Q(customer_last_seen_at__lt=seen),
                    pk=Conversation._meta.pk.to_python(pk),
                ).update(customer_last_seen_at=seen)
        except Exception:
            poll_cache.dirty_restore(pks)
            raise
        if len(pks) < batch:
            break
    return written
