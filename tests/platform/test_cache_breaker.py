"""A Redis that accepts connections but never answers costs a request at most one short timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.test import APIClient

from support.models import Conversation

pytestmark = pytest.mark.django_db

TIMEOUT_S = 0.05


class SilentServer:
    """Accepts TCP connections on loopback and never sends a byte back."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.baseline = 0.0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_redis(settings: Any) -> Iterator[SilentServer]:
    # The first request of a process imports most of the app (seconds on a busy machine): not the cache's time.
    APIClient().get("/api/support/widget/config")
    # The same request with the suite's healthy cache, side by side: what the database alone costs here.
    server_baseline = min(create(APIClient())[1] for _ in range(3))
    Conversation.objects.all().delete()
    server = SilentServer()
    server.baseline = server_baseline
    settings.CACHES = {
        "default": {
            "BACKEND": "rezvo_support.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0",
            # Production's defaults (settings.REDIS_CACHE_OPTIONS); the rest of the suite waits longer.
            "OPTIONS": {"socket_connect_timeout": TIMEOUT_S, "socket_timeout": TIMEOUT_S, "breaker_seconds": 5.0},
        }
    }
    yield server
    server.close()


def create(client: APIClient) -> tuple[int, float]:
    start = time.perf_counter()
    response = client.post("/api/support/conversations", {"source": "web"}, format="json")
    return response.status_code, time.perf_counter() - start


def test_a_throttled_request_falls_back_quickly_when_redis_never_answers(silent_redis: SilentServer) -> None:
    assert django_settings.REDIS_CACHE_OPTIONS["socket_timeout"] == TIMEOUT_S  # what production uses
    client = APIClient()
    timings = [create(client) for _ in range(10)]
    assert [status for status, _ in timings] == [201] * 10  # throttles fail open: allowed, not a 500
    assert Conversation.objects.count() == 10
    first, rest = timings[0][1], [elapsed for _, elapsed in timings[1:]]
    print("TIMINGS", round(silent_redis.baseline, 4), [round(t, 4) for _, t in timings])  # shown with -s
    # Generous bounds for a shared machine. Measured: ~0.11 s for the first (one 50 ms socket timeout
    # plus the request itself), ~0.02-0.03 s after (the breaker skips Redis; a request with Redis up ~0.03 s).
    # Over the healthy baseline: the old 1 s timeouts (with redis-py's retries) added seconds.
    assert first - silent_redis.baseline < 0.5, (first, silent_redis.baseline)
    assert max(rest) - silent_redis.baseline < 0.5, (rest, silent_redis.baseline)


def test_the_breaker_skips_redis_after_timeouts_in_a_row_and_tries_again_after_the_cool_down(
    silent_redis: SilentServer,
) -> None:
    from rezvo_support.cache import TIMEOUTS_TO_OPEN

    for _ in range(TIMEOUTS_TO_OPEN):
        with pytest.raises(Exception):  # noqa: B017 - whichever of redis's connection or timeout errors
            cache.get("k")
    connections = len(silent_redis.accepted)
    start = time.perf_counter()
    for _ in range(50):
        with pytest.raises(Exception):  # noqa: B017
            cache.get("k")
    skipped = time.perf_counter() - start
    assert skipped < 0.05, skipped  # 50 calls without a single socket wait
    assert len(silent_redis.accepted) == connections  # no new connection while open

    cache._cache._breaker.open_until = 0.0  # the cool-down is over
    start = time.perf_counter()
    with pytest.raises(Exception):  # noqa: B017
        cache.get("k")
    assert time.perf_counter() - start >= TIMEOUT_S * 0.8  # it did try Redis again


def test_a_timeout_between_answers_does_not_open_the_breaker_but_timeouts_in_a_row_do() -> None:
    # A Redis starved of CPU on a busy host answers late now and then; skipping it would send every caller to
    # the database for the whole cool-down, which loads the host more. A stuck one times out on every call.
    from redis.exceptions import TimeoutError as RedisTimeout

    from rezvo_support.cache import TIMEOUTS_TO_OPEN, CircuitBreaker

    breaker = CircuitBreaker(cooldown_s=5.0)
    for _ in range(3):
        for _ in range(TIMEOUTS_TO_OPEN - 1):
            breaker.trip(RedisTimeout("Timeout reading from socket"))
        breaker.check()  # still closed
        breaker.succeeded()  # an answer in between: the count starts again
    for _ in range(TIMEOUTS_TO_OPEN):
        breaker.trip(RedisTimeout("Timeout reading from socket"))
    with pytest.raises(Exception, match="Redis skipped"):
        breaker.check()


def test_a_refused_connection_opens_the_breaker_at_once() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from rezvo_support.cache import CircuitBreaker

    breaker = CircuitBreaker(cooldown_s=5.0)
    breaker.trip(RedisConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused."))
    with pytest.raises(Exception, match="Redis skipped"):
        breaker.check()
