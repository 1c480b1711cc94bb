"""services.conversation_seen_cached / conversation_seen_flush: the widget's last poll kept in Redis and
written to customer_last_seen_at in batches, and the away-mail rule reading whichever is newer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from support import poll_cache, services, tasks
from support.models import Conversation, EscalationReason

pytestmark = pytest.mark.django_db


def _ms(at: Any) -> int:
    return int(at.timestamp() * 1000)


@pytest.fixture
def conversation() -> Conversation:
    conversation, _ = services.conversation_create()
    return conversation


def test_a_poll_renews_the_cached_stamp_at_most_every_ten_seconds(conversation: Conversation) -> None:
    now = timezone.now()

    assert services.conversation_seen_cached(conversation_id=conversation.pk, seen_ms=None, at=now)
    fresh = poll_cache.seen_get(conversation.pk)
    later = now + timedelta(seconds=5)
    assert not services.conversation_seen_cached(conversation_id=conversation.pk, seen_ms=fresh, at=later)
    assert poll_cache.seen_get(conversation.pk) == fresh == _ms(now)
    assert services.conversation_seen_cached(
        conversation_id=conversation.pk, seen_ms=fresh, at=now + timedelta(seconds=11)
    )
    assert poll_cache.seen_get(conversation.pk) == _ms(now + timedelta(seconds=11))


def test_the_flush_writes_each_polled_conversation_once_and_only_forward(conversation: Conversation) -> None:
    other, _ = services.conversation_create()
    now = timezone.now()
    services.conversation_seen_cached(conversation_id=conversation.pk, seen_ms=None, at=now - timedelta(minutes=1))
    services.conversation_seen_cached(conversation_id=other.pk, seen_ms=None, at=now)
    # A turn wrote a newer stamp to the database meanwhile: the flush must not move it back.
    Conversation.objects.filter(pk=conversation.pk).update(customer_last_seen_at=now)

    assert services.conversation_seen_flush(batch=1) == 1  # popped one at a time, both handled
    assert services.conversation_seen_flush() == 0

    conversation.refresh_from_db()
    other.refresh_from_db()
    assert abs(conversation.customer_last_seen_at - now) < timedelta(milliseconds=1)
    assert other.customer_last_seen_at is not None
    assert abs(other.customer_last_seen_at - now) < timedelta(milliseconds=1)


def test_a_flush_that_fails_leaves_the_stamps_for_the_next_one(
    conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.conversation_seen_cached(conversation_id=conversation.pk, seen_ms=None)

    def broken(pks: list[str]) -> dict[str, int]:
        raise RuntimeError("database gone")

    with monkeypatch.context() as patched:
        patched.setattr(poll_cache, "seen_many", broken)
        with pytest.raises(RuntimeError):
            services.conversation_seen_flush()

    assert services.conversation_seen_flush() == 1


def test_the_periodic_task_flushes(conversation: Conversation) -> None:
    services.conversation_seen_cached(conversation_id=conversation.pk, seen_ms=None)

    tasks.conversation_seen_flush.call_local()

    conversation.refresh_from_db()
    assert conversation.customer_last_seen_at is not None


@pytest.fixture
def away(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks, "notification_fanout", lambda *args: None)
    monkeypatch.setattr(tasks, "customer_away_reply", lambda *args: queued.append(args))
    return queued


@pytest.mark.parametrize(
    ("stored_ago", "cached_ago", "mailed"),
    [
        (timedelta(minutes=5), timedelta(seconds=20), False),  # polling now; the flush has not run yet
        (timedelta(minutes=5), timedelta(minutes=3), True),  # the cached stamp is old too: gone
        (timedelta(seconds=20), timedelta(minutes=3), False),  # a turn stored a newer stamp
        (None, timedelta(seconds=20), False),
        (None, None, True),
    ],
)
def test_the_away_mail_rule_reads_the_newer_of_the_cached_and_the_stored_stamp(
    conversation: Conversation,
    staff_user: Any,
    away: list[Any],
    django_capture_on_commit_callbacks: Any,
    stored_ago: timedelta | None,
    cached_ago: timedelta | None,
    mailed: bool,
) -> None:
    now = timezone.now()
    services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)
    stored = None if stored_ago is None else now - stored_ago
    Conversation.objects.filter(pk=conversation.pk).update(
        contact_email="diner@example.com", customer_last_seen_at=stored
    )
    if cached_ago is not None:
        services.conversation_seen_cached(conversation_id=conversation.pk, seen_ms=None, at=now - cached_ago)
    conversation.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_reply(conversation=conversation, author=staff_user, content="Your table is booked.")

    assert len(away) == (1 if mailed else 0)
