"""Concurrent chat streams are capped per client IP (across workers) and per worker, with 429s beyond."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from support.api import stream_slots
from support.api.stream_slots import SQLiteSlots
from support.models import Message

BASE = "/api/support"


@pytest.fixture(params=["redis", "embedded"])
def slot_store(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> str:
    """Both shared stores: Redis (when the run has REDIS_URL) and the embedded SQLite file."""
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("no REDIS_URL for this run")
    else:
        settings.REDIS_URL = ""
        settings.SUPPORT_STREAM_SLOTS_PATH = str(tmp_path / "slots.sqlite3")
    return request.param


def open_streams(conversation_id: str, token: str, ips: list[str]) -> list[Any]:
    """POST one chat per IP, all at once from threads; each 200 stays open (holding its slot) until closed."""
    barrier = threading.Barrier(len(ips))

    def post(ip: str) -> Any:
        barrier.wait()
        return Client().post(
            f"{BASE}/conversations/{conversation_id}/chat",
            {"message": "How much does Rezvo cost?"},
            content_type="application/json",
            HTTP_X_CONVERSATION_TOKEN=token,
            REMOTE_ADDR=ip,
        )

    with ThreadPoolExecutor(max_workers=len(ips)) as pool:
        return list(pool.map(post, ips))


def close_all(responses: list[Any]) -> None:
    for response in responses:
        response.close()


@pytest.mark.django_db(transaction=True)
def test_the_cap_answers_429_for_one_stream_more_than_an_ip_may_hold_at_once(
    slot_store: str, settings: Any, make_conversation: Any
) -> None:
    settings.SUPPORT_STREAMS_PER_IP = 3
    settings.SUPPORT_STREAMS_PER_WORKER = 50
    settings.SUPPORT_STREAMS_FIRST_RESERVE = 0
    settings.SUPPORT_THROTTLE_CONVERSATION_RATE = "1000/min"
    conversation, token = make_conversation()
    ip = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"

    responses = open_streams(str(conversation.pk), token, [ip] * 4)
    try:
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 200, 200, 429], codes
        [refused] = [r for r in responses if r.status_code == 429]
        assert int(refused["Retry-After"]) > 0
        assert refused.json()["reason"] == "streams_per_ip" and refused.json()["detail"]
        other = open_streams(str(conversation.pk), token, ["10.250.0.1"])
        assert other[0].status_code == 200, "another address has its own slots"
        close_all(other)
    finally:
        close_all(responses)
    # Closing a stream (the client went away, even before its first event) frees its slot.
    again = open_streams(str(conversation.pk), token, [ip] * 3)
    assert [r.status_code for r in again] == [200, 200, 200]
    close_all(again)
    assert stream_slots.worker_streams_active() == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_at_its_stream_cap_answers_429_server_busy_and_health_still_answers(
    settings: Any, make_conversation: Any
) -> None:
    settings.SUPPORT_STREAMS_PER_WORKER = 2
    settings.SUPPORT_STREAMS_FIRST_RESERVE = 0
    settings.SUPPORT_STREAMS_PER_IP = 10
    conversation, token = make_conversation()
    responses = open_streams(str(conversation.pk), token, [f"10.8.0.{n}" for n in range(1, 5)])
    try:
        assert sorted(r.status_code for r in responses) == [200, 200, 429, 429]
        assert {r.json()["reason"] for r in responses if r.status_code == 429} == {"server_busy"}
        assert Client().get("/health").status_code == 200
    finally:
        close_all(responses)
    assert stream_slots.worker_streams_active() == 0


@pytest.mark.django_db(transaction=True)
def test_a_refused_stream_stores_nothing(settings: Any, make_conversation: Any) -> None:
    settings.SUPPORT_STREAMS_PER_WORKER = 1
    settings.SUPPORT_STREAMS_FIRST_RESERVE = 0
    conversation, token = make_conversation()
    responses = open_streams(str(conversation.pk), token, ["10.7.0.1", "10.7.0.2"])
    close_all(responses)
    conversation.refresh_from_db()
    # Only the admitted stream stored its customer turn (it closed before its reply was produced).
    assert Message.objects.filter(conversation=conversation).count() == 1


@pytest.mark.parametrize("store", ["redis", "embedded"])
def test_a_slot_held_by_a_dead_worker_expires_with_its_lease(store: str, settings: Any, tmp_path: Path) -> None:
    if store == "redis":
        if not settings.REDIS_URL:
            pytest.skip("no REDIS_URL for this run")
        slots = stream_slots.RedisSlots(settings.REDIS_URL, "rezvo-test")
    else:
        slots = SQLiteSlots(str(tmp_path / "slots.sqlite3"))
    ip = f"dead-{uuid.uuid4().hex}"
    assert slots.acquire(ip, "a", limit=1, lease_s=0.3) == 0
    assert slots.acquire(ip, "b", limit=1, lease_s=0.3) == -1  # the dead worker never releases "a"
    time.sleep(0.4)
    assert slots.acquire(ip, "c", limit=1, lease_s=0.3) == 0
    slots.release(ip, "c")
    assert slots.acquire(ip, "d", limit=1, lease_s=0.3) == 0


def test_the_embedded_store_counts_across_processes(tmp_path: Path) -> None:
    """Worker processes share the embedded count: what one holds, the others see."""
    path = str(tmp_path / "slots.sqlite3")
    SQLiteSlots(path).acquire("203.0.113.5", "held-here", limit=2, lease_s=60)
    code = (
        "import sys; from support.api.stream_slots import SQLiteSlots; "
        "print(SQLiteSlots(sys.argv[1]).acquire('203.0.113.5', sys.argv[2], limit=2, lease_s=60))"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code, path, f"child-{n}"], stdout=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    results = sorted(child.communicate(timeout=30)[0].strip() for child in children)
    assert results == ["-1", "1"]


@pytest.mark.django_db(transaction=True)
def test_a_workers_last_slots_are_kept_for_addresses_without_a_stream(settings: Any, make_conversation: Any) -> None:
    settings.SUPPORT_STREAMS_PER_WORKER = 4
    settings.SUPPORT_STREAMS_FIRST_RESERVE = 2
    settings.SUPPORT_STREAMS_PER_IP = 10
    conversation, token = make_conversation()
    busy = f"10.6.{uuid.uuid4().int % 250}.1"
    held = open_streams(str(conversation.pk), token, [busy])
    newcomers: list[Any] = []
    try:
        held += open_streams(str(conversation.pk), token, [busy] * 3)
        assert sorted(r.status_code for r in held) == [200, 200, 429, 429], "one address gets 2 of 4 slots"
        assert {r.json()["reason"] for r in held if r.status_code == 429} == {"server_busy"}
        newcomers = open_streams(str(conversation.pk), token, ["10.6.250.1", "10.6.250.2", "10.6.250.3"])
        assert sorted(r.status_code for r in newcomers) == [200, 200, 429]
    finally:
        close_all(held + newcomers)
