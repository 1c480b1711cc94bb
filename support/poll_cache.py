"""The widget poll's state in the cache, so an unchanged poll is a 304 without touching the database.

Keys, under the cache's KEY_PREFIX:

  poll:v:<pk>      a random version of what a poll of the conversation answers. Replaced (never deleted) after
                   each commit that changes it: a new turn, a transition (services.poll_version_bump). A poll
                   reads it before it reads the database, so a tag made of it can only be stale for a write
                   that bumps it later. Missing (evicted, expired): the next poll adds a new one.
  poll:t:<pk>      the conversation's token hash (it never changes): the widget's token is checked from it.
  poll:seen:<pk>   the widget's last poll, epoch milliseconds (Redis only).
  poll:seen-dirty  a Redis set of the pks whose poll:seen may be newer than customer_last_seen_at; the periodic
                   flush (services.conversation_seen_flush) pops it and writes the stamps in one batch.

Without Redis (the embedded file cache) there is no set to pop, so the widget's poll writes its stamp to
the database as before (at most every 30 s) and only the version and token are cached.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache, caches

from support.limiter import RedisHit

logger = logging.getLogger(__name__)

#: A version lives this long without a write: should a bump ever be lost (the cache down at that moment),
#: a poll is stale for at most this long. A new version costs each open widget one 200, so versions made
#: together (a restart, a burst of replies) expire spread over the last quarter, not in one burst.
VERSION_TTL_S = 120


TOKEN_TTL_S = 24 * 60 * 60
#: Longer than any flush interval: a stamp outlives the batch that writes it.
SEEN_TTL_S = 60 * 60
DIRTY_KEY = "poll:seen-dirty"


def version_ttl() -> int:
    return random.randint(VERSION_TTL_S * 3 // 4, VERSION_TTL_S)


def version_key(pk: object) -> str:
    return f"poll:v:{pk}"


def token_key(pk: object) -> str:
    return f"poll:t:{pk}"


def seen_key(pk: object) -> str:
    return f"poll:seen:{pk}"


@dataclass(frozen=True)
class PollState:
    """What the cache holds for one conversation; any part may be missing (None)."""

    version: str | None
    token_hash: str | None
    seen_ms: int | None


def state_get(pk: object) -> PollState | None:
    """One round trip (MGET on Redis); None when the cache cannot be reached."""
    keys = (version_key(pk), token_key(pk), seen_key(pk))
    try:
        _renew_pending()  # before the read: the first poll after an outage already sees the renewal
        found = cache.get_many(keys)
    except Exception:  # noqa: BLE001 - the database answers instead
        return None
    seen = found.get(keys[2])
    return PollState(
        version=found.get(keys[0]), token_hash=found.get(keys[1]), seen_ms=seen if isinstance(seen, int) else None
    )


def version_get_or_add(pk: object) -> str | None:
    """The current version, a new one if there was none; None when the cache cannot be reached."""
    key = version_key(pk)
    try:
        fresh = secrets.token_hex(8)
        if cache.add(key, fresh, version_ttl()):
            return fresh
        return cache.get(key)
    except Exception:  # noqa: BLE001 - the poll falls back to a tag made from the database
        return None


#: Conversations whose version this process could not renew (the cache down at that moment): renewed by
#: the process's next successful renewal or cached poll read, so an outage of a few seconds does not leave
#: open widgets on the old answer until VERSION_TTL_S runs out.
_unrenewed: set[str] = set()
_unrenewed_lock = threading.Lock()


def version_replace(pk: object) -> None:
    """A new random version: every tag given so far for this conversation stops matching."""
    try:
        cache.set(version_key(pk), secrets.token_hex(8), version_ttl())
    except Exception:  # noqa: BLE001 - renewed later (below); polls are stale for at most VERSION_TTL_S
        logger.warning("could not renew the poll version of conversation %s", pk)
        with _unrenewed_lock:
            _unrenewed.add(str(pk))
        return
    _renew_pending()


def _renew_pending() -> None:
    if not _unrenewed:  # the common case: one attribute read, no lock
        return
    with _unrenewed_lock:
        pending = list(_unrenewed)
        _unrenewed.clear()
    try:
        cache.set_many({version_key(pk): secrets.token_hex(8) for pk in pending}, version_ttl())
    except Exception:  # noqa: BLE001 - still down: keep them for the next success
        with _unrenewed_lock:
            _unrenewed.update(pending)


def token_remember(pk: object, token_hash: str) -> None:
    try:
        cache.set(token_key(pk), token_hash, TOKEN_TTL_S)
    except Exception:  # noqa: BLE001 - the next poll reads the conversation instead
        logger.debug("could not cache the token hash of conversation %s", pk)


def forget(pks: list[Any]) -> None:
    """Deleted conversations: their widgets' tokens and versions go, so no poll is answered from the cache."""
    keys = [key for pk in pks for key in (token_key(pk), version_key(pk), seen_key(pk))]
    try:
        cache.delete_many(keys)
    except Exception:  # noqa: BLE001 - the token key expires by itself; a poll then reads the database (404)
        logger.warning("could not forget the poll state of %d deleted conversations", len(pks))


def _redis() -> Any:
    """The cache's Redis client, or None when the cache is not Redis."""
    from rezvo_support.cache import RedisCache

    backend: Any = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(write=True)


def _same_server(one: Any, other: Any) -> bool:
    def where(client: Any) -> tuple[Any, ...]:
        kwargs = client.connection_pool.connection_kwargs
        return kwargs.get("host"), kwargs.get("port"), kwargs.get("db", 0), kwargs.get("path")

    return where(one) == where(other)


def state_get_counting(pk: object, hit: RedisHit) -> tuple[PollState | None, int | None] | None:
    """state_get() and the rate-limit `hit` counted in the same round trip (a pipeline of MGET and the
    limiter's own Lua script, on its key): (state, counter), or (None, None) when Redis failed. None when the
    cache is not the limiter's Redis: the caller reads and counts apart."""
    client = _redis()
    if client is None or not _same_server(client, hit.client):
        return None
    backend: Any = caches["default"]
    keys = [cache.make_and_validate_key(k) for k in (version_key(pk), token_key(pk), seen_key(pk))]
    try:
        backend._cache._breaker.check()  # an open circuit breaker: no network call at all
        _renew_pending()
        pipe = client.pipeline(transaction=False)
        pipe.mget(keys)
        pipe.eval(hit.script, 1, hit.key, hit.expiry, 1)
        values, count = pipe.execute()
    except Exception:  # noqa: BLE001 - the database answers; the limit fails open
        return None, None
    version, token, seen = (None if v is None else backend._cache._serializer.loads(v) for v in values)
    state = PollState(version=version, token_hash=token, seen_ms=seen if isinstance(seen, int) else None)
    return state, int(count)


def seen_store_available() -> bool:
    return _redis() is not None


def seen_store(pk: object, at_ms: int) -> bool:
    """Record the widget's poll at `at_ms` and mark the conversation for the flush: one round trip.
    False when there is no Redis or it failed (the caller writes the database instead)."""
    client = _redis()
    if client is None:
        return False
    try:
        pipe = client.pipeline(transaction=False)
        # An int is stored as its digits by Django's Redis serializer, so cache.get_many reads it back.
        pipe.set(cache.make_and_validate_key(seen_key(pk)), at_ms, ex=SEEN_TTL_S)
        pipe.sadd(cache.make_and_validate_key(DIRTY_KEY), str(pk))
        pipe.execute()
    except Exception:  # noqa: BLE001
        logger.warning("could not cache the last poll of conversation %s", pk)
        return False
    return True


def seen_get(pk: object) -> int | None:
    try:
        value = cache.get(seen_key(pk))
    except Exception:  # noqa: BLE001 - the stamp in the database is the fallback
        return None
    return value if isinstance(value, int) else None


def dirty_pop(count: int) -> list[str]:
    client = _redis()
    if client is None:
        return []
    popped = client.spop(cache.make_and_validate_key(DIRTY_KEY), count) or []
    return [p.decode() if isinstance(p, bytes) else str(p) for p in popped]


def dirty_restore(pks: list[str]) -> None:
    client = _redis()
    if client is not None and pks:
        client.sadd(cache.make_and_validate_key(DIRTY_KEY), *pks)


def seen_many(pks: list[str]) -> dict[str, int]:
    found = cache.get_many([seen_key(pk) for pk in pks])
    stamps = {pk: found.get(seen_key(pk)) for pk in pks}
    return {pk: value for pk, value in stamps.items() if isinstance(value, int)}
