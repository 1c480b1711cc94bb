"""Faults: the database going away under load, and Redis dying under the throttles.

The database test runs a real gunicorn (the production config) on its own database, keeps
widgets logging turns with Idempotency-Keys from several threads, takes the database away in
the middle, and brings it back. On the MongoDB leg it stops and restarts its own SecantusDB
server (a replica set, as the README requires for all-or-nothing writes); on SQLite another
the file's directory disappears (a symlink made to dangle), so no worker can open it.
While it is down /health and the API must answer 503 JSON; once it is back, every turn a client
was told was stored is stored exactly once, and each conversation's counters and cost equal the
sum over its messages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from bench import harness
from support import db, limiter, services
from support.models import Conversation, IdempotencyRecord, Message
from tests import mongo_server
from tests.fakes.fake_claude import FakeClaude, Reply

ON_MONGODB = bool(os.environ.get("MONGODB_URI"))
# Restarting SecantusDB takes seconds; unplugging the SQLite file is instant, so that leg gets more.
OUTAGES = 2 if ON_MONGODB else 12
BASE = "/api/support"


# --- A database we may take away -------------------------------------------------------------
class SecantusProcess:
    """A SecantusDB server (replica set) that can be stopped and started again on the same port and data."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = harness.free_port()
        self.uri = f"mongodb://{harness.HOST}:{self.port}/"
        self.log_path = workdir / "secantusd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = mongo_server._launch(
                mongo_server.find_secantusd(),
                self.port,
                self.workdir,
                str(self.workdir / "data"),
                log,
                standalone=False,
                log_level="WARNING",
            )
        assert mongo_server._wait_ready(self.process, self.uri, self.log_path, 30), self.log_path.read_text()[-2000:]

    def stop(self) -> None:
        if self.process is not None:
            mongo_server._stop(self.process)
            self.process = None


class SqliteVolume:
    """The SQLite file's directory, reached through a symlink that can point nowhere (an unmounted volume).

    Each request opens its own connection, so while the link dangles every new request fails to
    open the database; one already running keeps its open file and finishes.
    """

    def __init__(self, workdir: Path) -> None:
        self.real = workdir / "volume"
        self.real.mkdir()
        self.link = workdir / "db"
        self.path = str(self.link / "support.sqlite3")
        self._point_at(self.real)

    def _point_at(self, target: Path) -> None:
        tmp = self.link.with_name("db.next")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, self.link)  # atomic: no request sees a half-made link

    def stop(self) -> None:
        self._point_at(self.real.with_name("unmounted"))

    def start(self) -> None:
        self._point_at(self.real)


@dataclass
class Stack:
    server: harness.Server
    database: SecantusProcess | SqliteVolume
    staff_token: str

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        return harness.http_json(method, f"{self.server.url}{path}", body, headers)

    def staff(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.call(method, path, body, Authorization=f"Token {self.staff_token}")


@pytest.fixture
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running


@contextlib.contextmanager
def running_stack(**extra_env: str) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="rezvo-faults-") as tmp:
        workdir = Path(tmp)
        database: SecantusProcess | SqliteVolume
        if ON_MONGODB:
            database = SecantusProcess(workdir)
            database.start()
            env = harness.leg_environment(workdir, mongodb_uri=database.uri)
        else:
            database = SqliteVolume(workdir)
            env = harness.leg_environment(workdir)
            env["SQLITE_PATH"] = database.path
            # A kept connection holds its open file and would never notice the volume going; the
            # outage is seen when connections are opened, so open one per request here.
            env["SQLITE_CONN_MAX_AGE"] = "0"
        env.pop("ROOT_URLCONF")
        # Fail fast while the database is away, so the test sees 503s rather than timeouts.
        # A short lease, so a key whose request died in the outage is taken over within the test.
        env.update(
            MONGODB_TIMEOUT_MS="700",
            SQLITE_BUSY_TIMEOUT_S="1",
            SUPPORT_IDEMPOTENCY_LEASE_S="2",
            GUNICORN_WORKERS="2",
            GUNICORN_THREADS="8",
            # Six widgets chat at once from one address: the stream caps (tests/api/test_stream_slots.py) stay
            # out of the way of the faults under test.
            SUPPORT_STREAMS_PER_WORKER="1000000",
        )
        env.update(extra_env)
        try:
            harness.prepare_database(env)
            token = subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "shell",
                    "-c",
                    "from bench.harness import staff_token; print(staff_token())",
                ],
                cwd=harness.ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout.split()[-1]
            with harness.gunicorn(env, workdir) as server:
                yield Stack(server=server, database=database, staff_token=token)
        finally:
            if isinstance(database, SecantusProcess):
                database.stop()


# --- Widgets that keep logging and retry like the real one -----------------------------------
@dataclass
class Widget:
    stack: Stack
    conversation_id: str
    token: str
    acked: dict[str, list[str]] = field(default_factory=dict)
    failures: list[tuple[int, Any]] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)

    def log_turns(self, stop: threading.Event, deadline: float) -> None:
        turn = 0
        while not stop.is_set():
            turn += 1
            key = uuid.uuid4().hex
            body = {
                "user_message": f"question {turn}",
                "assistant_message": f"answer {turn}",
                "input_tokens": 10 + turn,
                "output_tokens": 20 + turn,
                "cache_read_tokens": turn % 3,
            }
            while True:  # the same key until acknowledged, as the widget retries
                try:
                    status, data = self.stack.call(
                        "POST",
                        f"{BASE}/conversations/{self.conversation_id}/messages",
                        body,
                        **{"X-Conversation-Token": self.token, "Idempotency-Key": key},
                    )
                except OSError as exc:
                    status, data = 0, str(exc)
                if status == 201:
                    self.acked[key] = sorted(m["id"] for m in data["messages"])
                    break
                self.failures.append((status, data))
                if time.monotonic() > deadline:
                    self.unfinished.append(key)
                    return
                time.sleep(0.1)


def start_widgets(stack: Stack, n: int) -> list[Widget]:
    widgets = []
    for _ in range(n):
        status, data = stack.call("POST", f"{BASE}/conversations", {"source": "web"})
        assert status == 201, data
        widgets.append(Widget(stack=stack, conversation_id=data["id"], token=data["token"]))
    return widgets


def assert_503_json(status: int, data: Any) -> None:
    assert status == 503, (status, data)
    assert isinstance(data, dict) and data.get("detail"), data


def test_a_database_outage_mid_run_is_503_json_and_leaves_nothing_half_written(stack: Stack) -> None:
    widgets = start_widgets(stack, 8)
    stop = threading.Event()
    deadline = time.monotonic() + 60
    threads = [threading.Thread(target=w.log_turns, args=(stop, deadline)) for w in widgets]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)  # traffic flowing
        acked_before = sum(len(w.acked) for w in widgets)
        stack.database.stop()
        time.sleep(0.5)
        health = stack.call("GET", "/health")
        tickets = stack.staff("GET", f"{BASE}/tickets")
        created = stack.call("POST", f"{BASE}/conversations", {"source": "web"})
        stack.database.start()
        # Then short outages at random moments, so some land between a request's writes.
        for _ in range(OUTAGES):
            time.sleep(random.uniform(0.1, 0.4))
            stack.database.stop()
            time.sleep(random.uniform(0.05, 0.3))
            stack.database.start()
        time.sleep(1.5)  # traffic flowing again
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)

    assert acked_before > 0, "the outage must come while turns are being logged"
    assert health[0] == 503
    assert health[1]["database"] == "unavailable"
    assert_503_json(*tickets)
    assert_503_json(*created)
    outage_answers = [f for w in widgets for f in w.failures]
    assert outage_answers, "the widgets should have hit the outage"
    # 503 while it is down; 409 for a key whose request died in the outage, until its lease runs out.
    assert {status for status, _ in outage_answers} <= {503, 409}, outage_answers[:5]
    assert 503 in {status for status, _ in outage_answers}
    assert all(isinstance(data, dict) and data.get("detail") for _, data in outage_answers)
    assert not [k for w in widgets for k in w.unfinished], "every retried turn must go through once it is back"
    assert stack.call("GET", "/health")[0] == 200

    for widget in widgets:
        status, detail = stack.staff("GET", f"{BASE}/conversations/{widget.conversation_id}")
        assert status == 200, detail
        stored = sorted(m["id"] for m in detail["messages"])
        acked = sorted(mid for ids in widget.acked.values() for mid in ids)
        assert stored == acked, "stored turns must be exactly the acknowledged ones, each once"
        assert detail["message_count"] == len(detail["messages"])
        for total, part in (
            ("total_input_tokens", "input_tokens"),
            ("total_output_tokens", "output_tokens"),
            ("total_cache_read_tokens", "cache_read_tokens"),
            ("cost_micros", "cost_micros"),
        ):
            assert detail[total] == sum(m[part] for m in detail["messages"]), total
    # Proof the run was not trivially small: turns before, during and after the outage.
    assert sum(len(w.acked) for w in widgets) > acked_before
    # The outage is in the JSON request log too.
    logged = [json.loads(line) for line in stack.server.log_text().splitlines() if line.startswith('{"ts"')]
    assert ("/health", 503) in {(line["path"], line["status"]) for line in logged}


# --- Redis dying under the throttles ---------------------------------------------------------
@contextlib.contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        ["redis-server", "--bind", harness.HOST, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection((harness.HOST, port), timeout=0.2):
                break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.django_db
@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs the redis-server binary (.ci/run installs it)")
def test_throttles_let_traffic_through_while_redis_is_down_and_count_again_when_it_is_back(
    anon: APIClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = harness.free_port()
    store = f"redis://{harness.HOST}:{port}/0"
    # A failed store is skipped for a few seconds; here the next request tries it again.
    monkeypatch.setattr(limiter, "STORE_RETRY_AFTER_S", 0.0)

    def create() -> int:
        return anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.1.2.3").status_code

    with override_settings(SUPPORT_RATE_LIMIT_STORAGE=store, SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE="2/hour"):
        with redis_server(port) as redis:
            assert [create(), create(), create()] == [201, 201, 429]  # counted in Redis
            redis.kill()
            redis.wait(timeout=10)
            with caplog.at_level(logging.WARNING, logger="support.limiter"):
                assert [create(), create()] == [201, 201]  # Redis gone: allowed, not a 500
            assert "store unavailable" in caplog.text
        with redis_server(port):  # back, empty: counting starts again on the same client
            assert [create(), create(), create()] == [201, 201, 429]


# --- A failure between one request's writes, at a chosen statement --------------------------
def fail_the_counter_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database errors on the counters' UPDATE (support.db.row_update), in the middle of the request's
    writes."""
    real_update = db.row_update

    def update(model: type[Any], **kwargs: Any) -> int:
        if model is Conversation and "message_count" in kwargs["add"]:
            raise OperationalError("server closed the connection unexpectedly")
        return real_update(model, **kwargs)

    monkeypatch.setattr(db, "row_update", update)


@pytest.mark.django_db(transaction=True)
@override_settings(SUPPORT_CLIENT_LOGGING="seed")  # the seed widget logs its own turns
def test_a_failure_between_a_requests_writes_leaves_nothing_and_the_retry_logs_once(
    make_conversation: Any, widget: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not services.writes_are_atomic():
        pytest.skip("a standalone MongoDB server has no transactions (README: use a replica set)")
    conversation, token = make_conversation()
    body = {"user_message": "q", "assistant_message": "a", "input_tokens": 40, "output_tokens": 70}
    path = f"{BASE}/conversations/{conversation.pk}/messages"

    fail_the_counter_update(monkeypatch)
    response = widget(token).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="turn-1")
    assert response.status_code == 503
    assert response.json()["detail"]
    assert Message.objects.count() == 0, "the turns' INSERT must be rolled back with the failed UPDATE"
    assert IdempotencyRecord.objects.count() == 0, "the key must be free for the retry"
    conversation.refresh_from_db()
    assert (conversation.message_count, conversation.cost_micros) == (0, 0)

    monkeypatch.undo()  # the database is back
    response = widget(token).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="turn-1")
    assert response.status_code == 201
    again = widget(token).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="turn-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    conversation.refresh_from_db()
    assert conversation.message_count == Message.objects.filter(conversation=conversation).count() == 2
    assert conversation.cost_micros == sum(Message.objects.values_list("cost_micros", flat=True)) == 390


# --- A key whose request died ----------------------------------------------------------------
@pytest.mark.django_db
def test_a_running_claim_is_409_but_a_dead_one_is_taken_over_once(make_conversation: Any) -> None:
    if not services.writes_are_atomic():
        pytest.skip("without transactions a dead request may have stored part of its turn")
    conversation, _ = make_conversation()

    def claim(key: str = "k", fingerprint: str = "f", take_over_stale: bool = True) -> tuple[Any, bool]:
        return services.idempotency_claim(
            conversation=conversation, key=key, fingerprint=fingerprint, take_over_stale=take_over_stale
        )

    first, is_new = claim()
    assert is_new
    _, is_new = claim()
    assert not is_new, "a claim inside its lease belongs to a request still running"

    expired = timezone.now() - timedelta(seconds=settings.SUPPORT_IDEMPOTENCY_LEASE_S + 1)
    IdempotencyRecord.objects.filter(pk=first.pk).update(created_at=expired)
    taken, is_new = claim()
    assert is_new, "a claim past its lease is taken over by the retry"
    _, is_new = claim()
    assert not is_new, "and by that retry only"
    _, is_new = claim(fingerprint="other body")
    assert not is_new

    claim(key="k2", take_over_stale=False)
    IdempotencyRecord.objects.filter(key="k2").update(created_at=expired)
    _, is_new = claim(key="k2", take_over_stale=False)
    assert not is_new, "without take_over_stale (the chat proxy) a stale claim is left alone"

    with pytest.raises(services.IdempotencyLeaseLost):
        services.idempotency_complete(record=first, response={"late": True})  # the stalled original
    services.idempotency_complete(record=taken, response={"done": True})
    assert IdempotencyRecord.objects.get(key="k").response == {"done": True}


# --- Claude failing under load, through gunicorn ---------------------------------------------
def test_every_chat_gets_a_reply_and_a_stored_turn_while_claude_fails_in_every_way() -> None:
    """429, 529, 500, too slow to start, stalled, reset before and during the stream, an error event:
    each customer still gets a reply (partial or from the knowledge base), both turns are stored once,
    the conversation is flagged claude_unavailable, and /health keeps answering meanwhile."""
    faults = [
        Reply(status=429, retry_after=0.01),
        Reply(status=429, retry_after=0.01),
        Reply(status=529, retry_after=0.01),
        Reply(status=529, retry_after=0.01),
        Reply(status=500, retry_after=0.01),
        Reply(status=500, retry_after=0.01),
        Reply(delay=3.0),  # does not start within SUPPORT_CLAUDE_TIMEOUT_S
        Reply(chunks=["Your table ", "is booked ", "for eight."], chunk_delay=2.0),  # stalls mid-stream
        Reply(drop_after=0),  # connection reset before any text
        Reply(chunks=["Your table ", "is booked ", "for eight."], drop_after=1),  # reset mid-stream
        Reply(stream_error_after=1),  # an overloaded_error event mid-stream
    ]
    with FakeClaude(default=Reply(text="Your table is booked.", chunk_delay=0.005)) as claude:
        claude.enqueue(*faults)
        settings_env = {
            "ANTHROPIC_API_KEY": "sk-ant-fake-key-for-tests",
            "ANTHROPIC_BASE_URL": claude.base_url,
            "SUPPORT_CLAUDE_MAX_RETRIES": "1",
            "SUPPORT_CLAUDE_TIMEOUT_S": "1",
            "SUPPORT_CLAUDE_STALL_TIMEOUT_S": "0.5",
        }
        with running_stack(**settings_env) as stack:
            widgets = start_widgets(stack, 6)
            results: dict[str, list[dict[str, Any]]] = {w.conversation_id: [] for w in widgets}
            health_seconds: list[float] = []
            stop = threading.Event()

            def chat_three_times(widget: Widget) -> None:
                for turn in range(3):
                    results[widget.conversation_id].append(chat(stack, widget, f"Book a table {turn}", turn % 2 == 0))

            def watch_health() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    assert stack.call("GET", "/health")[0] == 200
                    health_seconds.append(time.monotonic() - started)
                    time.sleep(0.1)

            watcher = threading.Thread(target=watch_health)
            watcher.start()
            threads = [threading.Thread(target=chat_three_times, args=(w,)) for w in widgets]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            stop.set()
            watcher.join(timeout=10)

            done = [d for replies in results.values() for d in replies]
            assert len(done) == 18 and all(d["text"] for d in done), "every customer gets a reply"
            kinds = {("fallback" if d["fallback"] else "partial" if d["partial"] else "claude") for d in done}
            assert kinds == {"fallback", "partial", "claude"}, kinds
            for d in done:
                if d["fallback"] or d["partial"]:
                    assert (d["escalated"], d["escalation_reason"]) == (True, "claude_unavailable")
            assert health_seconds and max(health_seconds) < 2.0, max(health_seconds, default=None)
            for widget in widgets:
                status, detail = stack.staff("GET", f"{BASE}/conversations/{widget.conversation_id}")
                assert status == 200
                replied = results[widget.conversation_id]
                stored = sorted(m["id"] for m in detail["messages"])
                assert stored == sorted(i for d in replied for i in (d["user_message_id"], d["message_id"]))
                assert detail["message_count"] == len(stored) == 6
                assert detail["cost_micros"] == sum(m["cost_micros"] for m in detail["messages"])
                assert detail["total_input_tokens"] == sum(m["input_tokens"] for m in detail["messages"])
                if any(d["fallback"] or d["partial"] for d in replied):
                    assert (detail["escalated"], detail["escalation_reason"]) == (True, "claude_unavailable")


def chat(stack: Stack, widget: Widget, message: str, stream: bool) -> dict[str, Any]:
    """One chat turn as the widget sends it: an Idempotency-Key, retried on 5xx / 409; the `done` object."""
    key = uuid.uuid4().hex
    headers = {"X-Conversation-Token": widget.token, "Idempotency-Key": key, "Content-Type": "application/json"}
    url = f"{stack.server.url}{BASE}/conversations/{widget.conversation_id}/chat"
    body = json.dumps({"message": message, "stream": stream}).encode()
    for _ in range(20):
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read().decode()
        except urllib.error.HTTPError as exc:
            assert exc.code in (409, 503), (exc.code, exc.read()[:300])
            time.sleep(0.2)
            continue
        if not stream:
            return json.loads(raw)
        frames = [f for f in raw.split("\n\n") if f.startswith("event: done")]
        assert frames, raw[:300]
        return json.loads(frames[-1].split("data: ", 1)[1])
    raise AssertionError("no reply after 20 attempts")
