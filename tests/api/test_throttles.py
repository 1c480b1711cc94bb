"""Widget rate limits: per client IP and per conversation, in a store every worker process shares."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.test import override_settings
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from rest_framework.test import APIClient

from bench import harness
from support.limiter import rate_limits_reset
from support.models import Conversation, Message

pytestmark = pytest.mark.django_db
BASE = "/api/support"


@override_settings(SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE="2/hour")
def test_conversation_creation_is_limited_per_client_ip(anon: APIClient) -> None:
    for _ in range(2):
        assert anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.0.0.1").status_code == 201
    response = anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["reason"] == "conversation_create"
    assert anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.0.0.2").status_code == 201
    assert Conversation.objects.count() == 3


@override_settings(SUPPORT_THROTTLE_CONVERSATION_RATE="3/min", SUPPORT_CLIENT_LOGGING="seed")
def test_message_logging_is_limited_per_conversation(make_conversation: Any, widget: Any) -> None:
    first, first_token = make_conversation()
    second, second_token = make_conversation()
    body = {"role": "user", "content": "hi"}
    for _ in range(3):
        response = widget(first_token).post(f"{BASE}/conversations/{first.pk}/messages", body, format="json")
        assert response.status_code == 201
    response = widget(first_token).post(f"{BASE}/conversations/{first.pk}/messages", body, format="json")
    assert response.status_code == 429
    assert response.json()["reason"] == "conversation"
    assert Message.objects.filter(conversation=first).count() == 3
    response = widget(second_token).post(f"{BASE}/conversations/{second.pk}/messages", body, format="json")
    assert response.status_code == 201


@override_settings(SUPPORT_THROTTLE_CONVERSATION_RATE="1/min")
def test_staff_are_not_throttled(make_conversation: Any, staff: APIClient) -> None:
    conversation, _ = make_conversation()
    for _ in range(3):
        response = staff.post(
            f"{BASE}/conversations/{conversation.pk}/messages", {"role": "user", "content": "x"}, format="json"
        )
        assert response.status_code == 201


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set by .ci/run)")
def test_throttle_counters_live_in_redis_when_configured(anon: APIClient) -> None:
    assert settings.SUPPORT_RATE_LIMIT_STORAGE == os.environ["REDIS_URL"]
    anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.9.9.9")
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = [k.decode() for k in client.keys("LIMITS*conversation_create*10.9.9.9*")]
    assert keys, "the throttle counter should be stored in Redis"


@override_settings(
    SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE="1/hour", SUPPORT_RATE_LIMIT_STORAGE="redis://127.0.0.1:1/0"
)
def test_an_unreachable_cache_lets_traffic_through_with_a_warning(
    anon: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    for _ in range(3):
        assert anon.post(f"{BASE}/conversations", {}, format="json").status_code == 201
    assert "store unavailable" in caplog.text
    assert caplog.text.count("store unavailable") == 1, "a failed store is skipped for a while, not retried each time"
    assert time.monotonic() - started < 3
    assert Conversation.objects.count() == 3


# --- Under concurrency -------------------------------------------------------------------------
def _stores() -> list[Any]:
    stores = [pytest.param("sqlite", id="embedded-sqlite")]
    if os.environ.get("REDIS_URL"):
        stores.append(pytest.param("redis", id="redis"))
    return stores


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path, settings: Any) -> Iterator[str]:
    if request.param == "sqlite":
        settings.SUPPORT_RATE_LIMIT_STORAGE = f"sqlite:///{tmp_path / 'limits.sqlite3'}"
    else:
        settings.SUPPORT_RATE_LIMIT_STORAGE = os.environ["REDIS_URL"]
    rate_limits_reset()
    yield request.param
    rate_limits_reset()


def in_parallel(count: int, call: Callable[[int], Any], *, workers: int = 25) -> list[Any]:
    """`call(i)` for i in range(count) on `workers` threads at once, each with its own database connection."""
    start = threading.Barrier(min(count, workers))

    def run(i: int) -> Any:
        try:
            if i < workers:
                start.wait(timeout=30)
            return call(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("store", _stores(), indirect=True)
def test_100_concurrent_creates_from_one_ip_get_exactly_the_limit(store: str, settings: Any) -> None:
    settings.SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE = "30/hour"

    def create(_: int) -> Any:
        return APIClient().post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.7.7.7")

    responses = in_parallel(100, create)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 30, statuses
    assert statuses.count(429) == 70
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["reason"] == "conversation_create"
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert Conversation.objects.count() == 30


def _hit_from_another_process(uri: str) -> list[bool]:
    # support.limiter (imported above) registers the sqlite:// scheme with `limits`.
    limiter = FixedWindowRateLimiter(storage_from_string(uri))
    item = parse("40/hour")
    return [limiter.hit(item, "conversation_create", "10.8.8.8") for _ in range(50)]


def test_the_embedded_store_counts_atomically_across_processes(tmp_path: Path) -> None:
    """gunicorn's workers are processes: the embedded store must not count per process (as memory:// does)."""
    uri = f"sqlite:///{tmp_path / 'limits.sqlite3'}"
    with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_hit_from_another_process, [uri] * 4))
    assert sum(sum(hits) for hits in results) == 40
    assert sum(hits.count(False) for hits in results) == 160


# --- The token is checked before the conversation's limit -----------------------------------------
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_without_the_token_never_use_up_a_strangers_conversation(
    make_conversation: Any, widget: Any, settings: Any
) -> None:
    settings.SUPPORT_THROTTLE_CONVERSATION_RATE = "3/min"
    settings.SUPPORT_CLIENT_LOGGING = "seed"
    conversation, token = make_conversation()
    url = f"{BASE}/conversations/{conversation.pk}/messages"
    body = {"role": "user", "content": "spam"}

    def attack(i: int) -> Any:
        client = widget("wrong-token") if i % 2 else APIClient()
        return client.post(url, body, format="json", REMOTE_ADDR=f"10.6.0.{i % 7}")

    assert {r.status_code for r in in_parallel(30, attack)} == {404}
    for _ in range(3):
        assert widget(token).post(url, body, format="json").status_code == 201
    response = widget(token).post(url, body, format="json")
    assert response.status_code == 429 and response.json()["reason"] == "conversation"
    assert Message.objects.filter(conversation=conversation).count() == 3


@pytest.mark.parametrize("path", ["", "/messages", "/chat", "/rating", "/contact"])
def test_an_unknown_id_and_someone_elses_id_get_the_same_answer(
    path: str, make_conversation: Any, widget: Any, anon: APIClient
) -> None:
    theirs, _ = make_conversation()
    mine, my_token = make_conversation()
    Conversation.objects.filter(pk=mine.pk).delete()  # a well-formed id that no longer exists
    answers = []
    for conversation_id, client in [
        (mine.pk, widget(my_token)),
        (theirs.pk, widget(my_token)),
        (theirs.pk, anon),
    ]:
        url = f"{BASE}/conversations/{conversation_id}{path}"
        response = client.get(url) if not path else client.post(url, {}, format="json")
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0] == (404, {"detail": "No conversation with this id for this token."})


# --- The production server: gunicorn's worker processes share one count ----------------------
@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="the store is the same on both legs; run once")
@pytest.mark.parametrize("store", _stores(), indirect=True)
def test_100_concurrent_creates_against_gunicorn_with_3_workers_get_exactly_the_limit(store: str) -> None:
    with tempfile.TemporaryDirectory(prefix="rezvo-limits-") as tmp:
        workdir = Path(tmp)
        env = harness.leg_environment(workdir, redis_url=os.environ["REDIS_URL"] if store == "redis" else "")
        env.update(
            ROOT_URLCONF="rezvo_support.urls",
            GUNICORN_WORKERS="3",
            GUNICORN_THREADS="8",
            SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE="30/hour",
        )
        harness.prepare_database(env)
        with harness.gunicorn(env, workdir) as server:
            assert len(server.worker_pids()) == 3
            url = f"{server.url}{BASE}/conversations"
            # As many at once as the server has threads (3 workers x 8), so none waits long in a queue.
            with ThreadPoolExecutor(max_workers=24) as pool:
                results = list(pool.map(lambda _: harness.http_json("POST", url, {}), range(100)))
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 30, sorted(statuses)
    assert statuses.count(429) == 70
    assert {body["reason"] for status, body in results if status == 429} == {"conversation_create"}
