"""Concurrent chat streams: a cap per worker process and a cap per client IP across all workers.

A streamed (or `stream: false`) chat reply holds one gunicorn thread for as long as Claude writes. Without
a cap, enough slow streams take every thread and /health, staff pages and new visitors queue behind them.

- Per worker: at most SUPPORT_STREAMS_PER_WORKER replies at once (the thread count minus a reserve), so
  the reserve threads stay free for everything else; of those, the last SUPPORT_STREAMS_FIRST_RESERVE are
  kept for addresses with no other reply running, so a new visitor still gets one while a few addresses
  hold all they may. Beyond it: 429 `server_busy`, Retry-After 1 s (with keep-alive off the retry is a new
  connection, which the kernel gives to a worker with free threads).
- Per client IP, all workers together: at most SUPPORT_STREAMS_PER_IP at once. Beyond it: 429
  `streams_per_ip`. The count lives in Redis (REDIS_URL) or, on the embedded default, in a small SQLite
  file every worker process opens. Each slot is a lease that expires after SUPPORT_STREAM_LEASE_S, so a
  worker killed mid-stream cannot hold its slots for ever.

    slot = stream_slot_acquire(ip="203.0.113.9")   # raises Throttled (429) when a cap is reached
    try: ... finally: slot.release()                 # idempotent
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from support.api.ratelimit import RateLimited
from support.sqlite_files import sqlite_open

logger = logging.getLogger(__name__)

#: Retry-After when this IP already has its share of streams: about one reply's length.
IP_RETRY_AFTER_S = 5
#: Retry-After when this worker's stream threads are busy: another worker likely has a free one now.
WORKER_RETRY_AFTER_S = 1


class _WorkerSlots:
    """A non-blocking counting semaphore whose size follows the settings (tests change them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0

    def try_acquire(self, *, first: bool) -> bool:
        """`first`: the address has no other stream running; only such streams may take the reserved slots."""
        limit = settings.SUPPORT_STREAMS_PER_WORKER
        if not first:
            limit -= settings.SUPPORT_STREAMS_FIRST_RESERVE
        with self._lock:
            if self.active >= limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.active = max(self.active - 1, 0)


_worker = _WorkerSlots()


class IPSlotStore(Protocol):
    def acquire(self, ip: str, token: str, *, limit: int, lease_s: float) -> int:
        """-1 when `ip` already holds `limit` slots, else how many it held before this one."""
        ...

    def release(self, ip: str, token: str) -> None: ...


# Atomic in Redis: drop expired leases, then add ours if there is room. The sorted set's score is the lease's end.
_REDIS_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[3]) then return -1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4]) * 1000))
return held
"""


class RedisSlots:
    def __init__(self, url: str, prefix: str) -> None:
        import redis  # only needed with REDIS_URL

        self._client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._acquire = self._client.register_script(_REDIS_ACQUIRE)
        self._prefix = prefix

    def _key(self, ip: str) -> str:
        return f"{self._prefix}:streams:{ip}"

    def acquire(self, ip: str, token: str, *, limit: int, lease_s: float) -> int:
        return int(self._acquire(keys=[self._key(ip)], args=[time.time(), token, limit, lease_s]))

    def release(self, ip: str, token: str) -> None:
        self._client.zrem(self._key(ip), token)


class SQLiteSlots:
    """Leases in a SQLite file shared by the worker processes of one host (the embedded default)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS lease (ip TEXT, token TEXT PRIMARY KEY, expires REAL)")
            db.execute("CREATE INDEX IF NOT EXISTS lease_ip ON lease (ip, expires)")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # The lock is held for three statements, but a burst of new streams queues on it: wait long enough
            # for the burst to pass rather than give up (and skip the cap).
            db = self._local.db = sqlite_open(self._path, timeout=10)
        return db

    def acquire(self, ip: str, token: str, *, limit: int, lease_s: float) -> int:
        db, now = self._connect(), time.time()
        # IMMEDIATE: the count and the insert happen under one write lock across processes.
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM lease WHERE ip = ? AND expires <= ?", (ip, now))
            [(count,)] = db.execute("SELECT COUNT(*) FROM lease WHERE ip = ?", (ip,)).fetchall()
            if count >= limit:
                return -1
            db.execute("INSERT INTO lease (ip, token, expires) VALUES (?, ?, ?)", (ip, token, now + lease_s))
            return int(count)
        finally:
            db.execute("COMMIT")

    def release(self, ip: str, token: str) -> None:
        self._connect().execute("DELETE FROM lease WHERE token = ?", (token,))


@cache
def _ip_store(redis_url: str, prefix: str, path: str) -> IPSlotStore:
    return RedisSlots(redis_url, prefix) if redis_url else SQLiteSlots(path)


def ip_store() -> IPSlotStore:
    prefix = str(settings.CACHES["default"].get("KEY_PREFIX", "rezvo"))
    return _ip_store(settings.REDIS_URL, prefix, settings.SUPPORT_STREAM_SLOTS_PATH)


class StreamSlot:
    """One held stream: this worker's share and (unless staff) the client IP's. release() is idempotent."""

    def __init__(self, ip: str | None, token: str) -> None:
        self.ip, self.token = ip, token
        self.holds_worker = False
        self._released = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self.holds_worker:
            _worker.release()
        if self.ip is not None:
            try:
                ip_store().release(self.ip, self.token)
            except Exception as exc:  # noqa: BLE001 - the lease expires on its own
                logger.warning("could not release the stream slot of %s: %s", self.ip, exc)


def _busy(detail: str, *, reason: str, wait: int) -> RateLimited:
    return RateLimited(reason=reason, wait=wait, detail=detail)


def stream_slot_acquire(*, ip: str | None) -> StreamSlot:
    """Hold one stream slot of `ip` (None: staff, no per-IP cap) and of this worker, or raise a 429.

    The address first: one address's surplus is refused before it can take this worker's slots from others."""
    slot = StreamSlot(None, uuid.uuid4().hex)
    first = True
    if ip is not None:
        try:
            held = ip_store().acquire(
                ip, slot.token, limit=settings.SUPPORT_STREAMS_PER_IP, lease_s=settings.SUPPORT_STREAM_LEASE_S
            )
        except Exception as exc:  # noqa: BLE001 - a broken shared store must not stop chat; the worker cap still holds
            logger.warning("per-IP stream cap skipped, store unavailable: %s", exc)
        else:
            if held < 0:
                limit = settings.SUPPORT_STREAMS_PER_IP
                detail = f"At most {limit} replies at once from one address; retry when one has finished."
                raise _busy(detail, reason="streams_per_ip", wait=IP_RETRY_AFTER_S)
            slot.ip = ip
            first = held == 0
    if not _worker.try_acquire(first=first):
        slot.release()
        detail = "The server is busy with other replies; retry shortly."
        raise _busy(detail, reason="server_busy", wait=WORKER_RETRY_AFTER_S)
    slot.holds_worker = True
    return slot


def client_ip(request: Any) -> str:
    """The client's address as the rate limits see it (X-Forwarded-For behind NUM_PROXIES proxies)."""
    return BaseThrottle().get_ident(request)


def worker_streams_active() -> int:
    """Streams this worker process is serving now (for tests and diagnostics)."""
    return _worker.active
