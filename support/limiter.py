"""Atomic rate limits with the `limits` library, on a store every gunicorn worker shares.

SUPPORT_RATE_LIMIT_STORAGE names the store as a `limits` URI: `redis://...` (the default when REDIS_URL is
set: one Lua script increments and expires a counter, atomically) or `sqlite:///path` (the embedded
default: a small counter table in var/, shared by every worker process on the machine, each hit one
UPSERT ... RETURNING statement, which SQLite runs under its write lock, so no two hits read the same
count). `limits`' own in-memory store is per process and would multiply every limit by the workers.

A store that fails lets traffic through with a warning and is left alone for a few seconds, so an outage
costs each request at most one short timeout, not one per limit.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlparse

from django.conf import settings
from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from support.sqlite_files import sqlite_open

logger = logging.getLogger(__name__)

#: Redis timeouts for the limiter: a slow store must not hold up every widget request.
REDIS_TIMEOUT_S = 0.25
#: After a store failure, requests skip it (and pass) for this long before trying it again.
STORE_RETRY_AFTER_S = 5.0


class SQLiteStorage(Storage):
    """A `limits` storage in one SQLite file: fixed-window counters, atomic across processes."""

    STORAGE_SCHEME = ["sqlite"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = urlparse(uri).path
        self.timeout = float(options.get("timeout", 5.0))
        self._local = threading.local()

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_open(self.path, timeout=self.timeout)
            db.execute(
                "CREATE TABLE IF NOT EXISTS limits_counter "
                "(key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL)"
            )
            self._local.db = db
        return db

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        # One statement: a new or expired window restarts at `amount`, a live one adds to its count.
        row = (
            self._db()
            .execute(
                "INSERT INTO limits_counter (key, count, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET "
                "count = CASE WHEN expires_at <= ? THEN excluded.count ELSE count + excluded.count END, "
                "expires_at = CASE WHEN expires_at <= ? THEN excluded.expires_at ELSE expires_at END "
                "RETURNING count",
                (key, amount, now + expiry, now, now),
            )
            .fetchone()
        )
        return int(row[0])

    def get(self, key: str) -> int:
        row = (
            self._db()
            .execute("SELECT count FROM limits_counter WHERE key = ? AND expires_at > ?", (key, time.time()))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._db().execute("SELECT expires_at FROM limits_counter WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return self._db().execute("DELETE FROM limits_counter").rowcount

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM limits_counter WHERE key = ?", (key,))


_storages: dict[str, Storage] = {}
_storages_lock = threading.Lock()
#: URI -> time.monotonic() until which that store is skipped after a failure.
_down_until: dict[str, float] = {}


def storage() -> Storage:
    """The configured store, one instance (and connection pool) per URI for the process."""
    uri = settings.SUPPORT_RATE_LIMIT_STORAGE
    with _storages_lock:
        if uri not in _storages:
            options: dict[str, Any] = {}
            if uri.startswith(("redis://", "rediss://")):
                options = {"socket_timeout": REDIS_TIMEOUT_S, "socket_connect_timeout": REDIS_TIMEOUT_S}
            # A synchronous store: the rate-limit URIs never name an `async+` scheme.
            _storages[uri] = cast(Storage, storage_from_string(uri, **options))
        return _storages[uri]


_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


@functools.lru_cache(maxsize=64)
def rate_parse(rate: str) -> RateLimitItem:
    """A rate in DRF's form ("30/min", "120/m", "5/hour", "1000/s"), as the settings have always taken."""
    count, _, period = rate.partition("/")
    unit = _PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or unit is None:
        raise ValueError(f"Rate {rate!r} is not of the form <count>/<second|minute|hour|day>.")
    return parse(f"{int(count)}/{unit}")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    #: Seconds until the window resets (for Retry-After) when refused.
    retry_after_s: int = 0


def rate_limit_hit(*, rate: str, scope: str, ident: str) -> Verdict:
    """Count one hit of `ident` against `rate` ("30/hour"); refused past the limit. Fails open."""
    uri = settings.SUPPORT_RATE_LIMIT_STORAGE
    if time.monotonic() < _down_until.get(uri, 0.0):
        return Verdict(allowed=True)
    item = rate_parse(rate)
    limiter = FixedWindowRateLimiter(storage())
    try:
        if limiter.hit(item, scope, ident):
            return Verdict(allowed=True)
        reset_at = limiter.get_window_stats(item, scope, ident).reset_time
    except Exception as exc:  # noqa: BLE001 - any store failure must not become a 500
        _down_until[uri] = time.monotonic() + STORE_RETRY_AFTER_S
        logger.warning("rate limit %s skipped, store unavailable: %s", scope, type(exc).__name__)
        return Verdict(allowed=True)
    return Verdict(allowed=False, retry_after_s=max(int(reset_at - time.time()) + 1, 1))


def rate_limits_reset() -> None:
    """Forget every counter (tests)."""
    _down_until.clear()
    storage().reset()


@dataclass(frozen=True)
class RedisHit:
    """One hit of a fixed-window limit, to be counted inside a caller's own Redis round trip (the widget's
    poll counts its per-IP hit in the MGET that reads its cached state): the same key, window and Lua script
    as FixedWindowRateLimiter.hit on the RedisStorage, so both count into the same counter."""

    client: Any
    key: str
    expiry: int
    limit: int
    script: str | bytes
    item: RateLimitItem
    scope: str
    ident: str


def rate_limit_redis_hit(*, rate: str, scope: str, ident: str) -> RedisHit | None:
    """The hit to count in the caller's pipeline; None when the store is not Redis or rests after a failure
    (the caller then uses rate_limit_hit, which fails open)."""
    from limits.storage import RedisStorage

    uri = settings.SUPPORT_RATE_LIMIT_STORAGE
    if time.monotonic() < _down_until.get(uri, 0.0):
        return None
    store = storage()
    if not isinstance(store, RedisStorage):
        return None
    item = rate_parse(rate)
    return RedisHit(
        client=store.get_connection(),
        key=store.prefixed_key(item.key_for(scope, ident)),
        expiry=item.get_expiry(),
        limit=item.amount,
        script=store.SCRIPT_INCR_EXPIRE,
        item=item,
        scope=scope,
        ident=ident,
    )


def rate_limit_redis_verdict(hit: RedisHit, count: int | None) -> Verdict:
    """The verdict on the counter the caller's pipeline returned; None: the round trip failed, fail open."""
    if count is None:
        _down_until[settings.SUPPORT_RATE_LIMIT_STORAGE] = time.monotonic() + STORE_RETRY_AFTER_S
        logger.warning("rate limit %s skipped, store unavailable", hit.scope)
        return Verdict(allowed=True)
    if count <= hit.limit:
        return Verdict(allowed=True)
    try:
        reset_at = FixedWindowRateLimiter(storage()).get_window_stats(hit.item, hit.scope, hit.ident).reset_time
    except Exception:  # noqa: BLE001 - refused all the same; a default wait
        return Verdict(allowed=False, retry_after_s=hit.expiry)
    return Verdict(allowed=False, retry_after_s=max(int(reset_at - time.time()) + 1, 1))
