"""The processes and HTTP calls the chat proxy benches share (bench/proxy_overhead.py, bench/starvation.py).

A FakeClaude process (tests/fakes/fake_claude.py) and the app under gunicorn with the shipped gunicorn.conf.py
on a fresh SQLite database, plus the few HTTP helpers that talk to them.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MODEL = "claude-haiku-4-5"
REPLY_TEXT = (
    "Rezvo has a free plan to get you started, and paid plans add staff, reminders and deposits. "
    "There is no commission on any booking."
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- Processes -------------------------------------------------------------------------------
@dataclass
class Services:
    tmp: Path
    redis_url: str = ""
    fake_url: str = ""
    app_port: int = 0
    procs: list[subprocess.Popen] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_fake(services: Services, *, delay: float, chunk_delay: float) -> None:
    # As a module from the repository root: run as a script, tests/ would come first on sys.path and
    # its selectors package would hide the standard library's (which http.server needs).
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.fake_claude",
            "--port",
            "0",
            "--delay",
            str(delay),
            "--chunk-delay",
            str(chunk_delay),
            "--text",
            REPLY_TEXT,
            "--input-tokens",
            "900",
            "--output-tokens",
            "30",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    services.procs.append(proc)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening on" not in line:
        raise SystemExit(f"FakeClaude did not start: {line!r}")
    services.fake_url = line.strip().rsplit(" ", 1)[-1]


def app_env(services: Services) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_", "ANTHROPIC_", "CACHE_"))}
    if services.redis_url:
        # As production runs: rate-limit counters in Redis, under a prefix of this run's own.
        env.update(REDIS_URL=services.redis_url, CACHE_KEY_PREFIX=f"bench-proxy-{secrets.token_hex(4)}")
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=HOST,
        SECURE_SSL_REDIRECT="false",
        SQLITE_PATH=str(services.tmp / "bench.sqlite3"),
        CACHE_DIR=str(services.tmp / "cache"),
        ANTHROPIC_API_KEY="test",
        ANTHROPIC_BASE_URL=services.fake_url,
        SUPPORT_CLAUDE_MODEL=MODEL,
        # A budget cap, so each chat also pays for today's spend query, as production with a cap does.
        SUPPORT_DAILY_BUDGET_USD="1000",
        # The benchmark is one client making many calls; the limits are tested elsewhere.
        SUPPORT_THROTTLE_IP_RATE="1000000/min",
        SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE="1000000/hour",
        SUPPORT_THROTTLE_CONVERSATION_RATE="1000000/min",
        SUPPORT_CHAT_MAX_TURNS="100000",
        # The message-logging probes drive the seed widget's own logging (off by default: 403), as bench/harness.py.
        SUPPORT_CLIENT_LOGGING="seed",
        GUNICORN_BIND=f"{HOST}:{services.app_port}",
    )
    # All streams come from one client IP here; the per-IP stream cap is measured by bench/starvation.py.
    env.setdefault("SUPPORT_STREAMS_PER_IP", "1000000")
    return env


def start_app(services: Services) -> None:
    services.app_port = free_port()
    env = app_env(services)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    log = open(services.tmp / "gunicorn.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "rezvo_support.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    services.procs.append(proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{(services.tmp / 'gunicorn.log').read_text()[-3000:]}")
        try:
            status, _ = request(services, "GET", "/health")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /health within 60 s")


# --- HTTP helpers ----------------------------------------------------------------------------
def request(
    services: Services, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, services.app_port, timeout=30)
    try:
        payload = json.dumps(body) if body is not None else None
        conn.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def fake_call(services: Services, method: str, path: str, body: Any = None) -> Any:
    host, port = services.fake_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def new_conversation(services: Services) -> tuple[str, str]:
    status, body = request(services, "POST", "/api/support/conversations", {"source": "web"})
    assert status == 201, body
    return body["id"], body["token"]


def sse_frames(response: http.client.HTTPResponse) -> Iterator[tuple[str, dict[str, Any], float, float]]:
    """(event, data, perf_counter, wall clock) for each SSE frame as soon as it is read."""
    buffer = b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in frame.decode().split("\n"))
            yield fields["event"], json.loads(fields["data"]), time.perf_counter(), time.time()
