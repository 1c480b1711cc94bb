"""Reads of the widget poll's cached state (support/poll_cache.py) and the customer's last-seen stamp."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from support import poll_cache
from support.limiter import RedisHit
from support.models import Conversation
from support.poll_cache import PollState

__all__ = [
    "PollState",
    "PollStateRead",
    "conversation_last_seen",
    "poll_state_get",
    "poll_state_get_counting",
    "poll_version_get",
]


@dataclass(frozen=True)
class PollStateRead:
    """The poll state a throttle already read in its round trip (None: the cache failed)."""

    state: PollState | None


def poll_state_get(*, conversation_pk: object) -> PollState | None:
    """The conversation's poll version, token hash and last poll stamp from the cache (one round trip);
    None when the cache cannot be reached."""
    return poll_cache.state_get(conversation_pk)


def poll_state_get_counting(*, conversation_pk: object, hit: RedisHit) -> tuple[PollState | None, int | None] | None:
    """poll_state_get() with a rate-limit hit counted in the same round trip: (state, counter); None when
    the cache and the limiter are not the same Redis (read and count apart)."""
    return poll_cache.state_get_counting(conversation_pk, hit)


def poll_version_get(*, conversation_pk: object) -> str | None:
    """The version a poll's tag is made of, started if there was none; read before the database."""
    return poll_cache.version_get_or_add(conversation_pk)


def conversation_last_seen(*, conversation: Conversation) -> datetime | None:
    """When the customer's widget last polled or sent a turn: the later of the stored stamp and the one
    in the cache that the periodic flush has not written yet."""
    stored = conversation.customer_last_seen_at
    cached_ms = poll_cache.seen_get(conversation.pk)
    if cached_ms is None:
        return stored
    cached = datetime.fromtimestamp(cached_ms / 1000, tz=UTC)
    return cached if stored is None or cached > stored else stored
