"""Django's Redis cache, minus a redis.Redis() built for every cache call, plus a circuit breaker.

Django's RedisCacheClient.get_client() constructs a new redis.Redis object (and its table of
~170 response callbacks) on each get/set; a throttled widget request makes four such calls.
redis.Redis is thread-safe over its connection pool, so one per pool is enough.

A Redis that accepts connections but never answers would cost every cache call its full socket
timeout. After a connection error, or TIMEOUTS_TO_OPEN timeouts in a row, the breaker opens: for
`breaker_seconds` (OPTIONS; settings.REDIS_BREAKER_S, 0 = no breaker) each call
raises CacheUnavailable at once, without touching the network, and the callers' existing fallbacks
apply (throttles let traffic through, the daily spend is summed from the database). The first call
after the cool-down tries Redis again.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from django.core.cache.backends import redis as django_redis

logger = logging.getLogger(__name__)


class CacheUnavailable(redis.exceptions.ConnectionError):
    """Raised instead of calling Redis while the breaker is open."""


#: Timeouts in a row (no answer in between) that open the breaker. One late answer is not an outage: on a
#: host whose CPUs are all busy, Redis now and then answers after the 50 ms socket timeout, and opening on
#: it sent every caller of that worker to the database for the whole cool-down (the polling bench: 23
#: openings in 30 s, polls answered from the database instead of the cache, which loaded the host more).
#: A stuck Redis costs three timeouts, then nothing.
TIMEOUTS_TO_OPEN = 3


class CircuitBreaker:
    def __init__(self, *, cooldown_s: float) -> None:
        self.cooldown_s = cooldown_s
        self.open_until = 0.0  # time.monotonic(); a float store is atomic, so threads need no lock
        # Racing threads may lose an increment: the breaker then opens one timeout later.
        self.timeouts_in_a_row = 0

    def check(self) -> None:
        if time.monotonic() < self.open_until:
            raise CacheUnavailable(f"Redis skipped: it failed within the last {self.cooldown_s:.1f} s")

    def succeeded(self) -> None:
        if self.timeouts_in_a_row:
            self.timeouts_in_a_row = 0

    def trip(self, error: Exception) -> None:
        if isinstance(error, redis.exceptions.TimeoutError):
            self.timeouts_in_a_row += 1
            if self.timeouts_in_a_row < TIMEOUTS_TO_OPEN:
                return
        self.timeouts_in_a_row = 0
        if time.monotonic() >= self.open_until:
            logger.warning("Redis unavailable (%s); skipping it for %.1f s", error, self.cooldown_s)
        self.open_until = time.monotonic() + self.cooldown_s


# Errors that say Redis itself is unreachable or stuck (not a bad command or a missing key).
_OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_GUARDED = ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many", "delete_many", "clear")


def _guarded(name: str) -> Callable[..., Any]:
    call = getattr(django_redis.RedisCacheClient, name)

    @functools.wraps(call)
    def guarded(self: RedisCacheClient, *args: Any, **kwargs: Any) -> Any:
        self._breaker.check()
        try:
            result = call(self, *args, **kwargs)
        except _OUTAGES as error:
            self._breaker.trip(error)
            raise
        self._breaker.succeeded()
        return result

    return guarded


class RedisCacheClient(django_redis.RedisCacheClient):
    # Set up by Django's RedisCacheClient (its private API, which django-stubs leaves out); annotations
    # only, so nothing here replaces the inherited values.
    _servers: list[str]
    _pools: dict[int, Any]
    _pool_class: Any
    _pool_options: dict[str, Any]
    _client: Callable[..., Any]
    _get_connection_pool_index: Callable[[bool], int]

    def __init__(self, *args: Any, breaker_seconds: float = 0.0, **kwargs: Any) -> None:
        # No retries: one short timeout is the whole cost of a stuck Redis (redis-py retries a
        # timed-out command three times by default).
        kwargs.setdefault("retry", redis.retry.Retry(redis.backoff.NoBackoff(), 0))
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._breaker = CircuitBreaker(cooldown_s=breaker_seconds)

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(
                connection_pool=self._pools[index], retry=self._pool_options["retry"]
            )
        return client


for _name in _GUARDED:
    setattr(RedisCacheClient, _name, _guarded(_name))


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
