"""Shared by the benchmark and the fuzz run: a production-configured gunicorn on a throwaway database.

A leg runs in its own interpreter because Django reads its settings (the database above all)
once per process: `leg_environment()` is put into os.environ before `django.setup()`, and the
same environment is handed to gunicorn, so both talk to the same temporary database.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
# Only this Redis database is used, under a per-run key prefix, so nothing else in it is touched.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
# High enough that the load generator (one client IP) measures the code path, not the limit.
UNLIMITED = "1000000/s"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def redis_url_if_up() -> str:
    """BENCH_REDIS_URL (default db 14 on the local Redis) if it answers PING, else "" (file cache)."""
    url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    if not url:
        return ""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except Exception:  # noqa: BLE001 - any failure means "use the file cache"
        return ""
    return url


def leg_environment(workdir: Path, *, mongodb_uri: str = "", redis_url: str = "") -> dict[str, str]:
    """Production settings (DEBUG off) for a server on 127.0.0.1 over plain HTTP and a temp database."""
    # Never the real Claude: a leg that needs it points ANTHROPIC_BASE_URL at tests/fakes/fake_claude.py.
    inherited = {
        "MONGODB_URI",
        "REDIS_URL",
        "SUPPORT_RATE_LIMIT_STORAGE",
        "SQLITE_PATH",
        "DJANGO_SETTINGS_MODULE",
        "ROOT_URLCONF",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
    }
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(
        DJANGO_SETTINGS_MODULE="rezvo_support.settings",
        PYTHONPATH=str(ROOT),
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=HOST,
        SECURE_SSL_REDIRECT="false",
        SQLITE_PATH=str(workdir / "bench.sqlite3"),
        CACHE_DIR=str(workdir / "cache"),
        CACHE_KEY_PREFIX=f"bench-{secrets.token_hex(4)}",
        SUPPORT_THROTTLE_IP_RATE=UNLIMITED,
        SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE=UNLIMITED,
        SUPPORT_THROTTLE_CONVERSATION_RATE=UNLIMITED,
        # The loggers write long conversations; the turn limit is tested by tests/services/test_limits.py.
        SUPPORT_CHAT_MAX_TURNS="1000000",
        # The benches and the fault tests drive the seed widget's own logging (POST .../messages with its token).
        SUPPORT_CLIENT_LOGGING="seed",
        # The load generator is one client IP; the per-IP stream cap is measured by bench/starvation.py.
        SUPPORT_STREAMS_PER_IP="1000000",
        ROOT_URLCONF="bench.urls",
        LOG_LEVEL="WARNING",
    )
    # The run's own task queue (Redis list or SQLite file), which task_consumer() works off, as in production.
    env.update(HUEY_NAME=f"bench-{env['CACHE_KEY_PREFIX']}", HUEY_SQLITE_PATH=str(workdir / "huey.sqlite3"))
    env["HUEY_IMMEDIATE"] = "false"
    if mongodb_uri:
        env["MONGODB_URI"] = mongodb_uri
        env["MONGODB_NAME"] = f"bench_{secrets.token_hex(4)}"
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        # The embedded rate-limit store (support/limiter.py), in this run's folder like its cache.
        env["SUPPORT_RATE_LIMIT_STORAGE"] = f"sqlite:///{workdir / 'ratelimits.sqlite3'}"
    return env


def prepare_database(env: dict[str, str]) -> None:
    """Migrate the empty database (seeds the price rows) in a child process with the leg's settings."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=600
    )


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    peak_rss_kib: dict[int, int] = field(default_factory=dict)
    cpu_ticks: dict[int, int] = field(default_factory=dict)

    def worker_pids(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def sample_rss(self) -> None:
        """Record each worker's peak RSS (VmHWM: the kernel's high-water mark, so no peak is missed)
        and CPU time so far (a recycled worker keeps its last sample)."""
        for pid in self.worker_pids():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                self.cpu_ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_rss_kib[pid] = max(self.peak_rss_kib.get(pid, 0), int(line.split()[1]))

    def cpu_seconds(self) -> float:
        """CPU used by all workers so far (user + system)."""
        self.sample_rss()
        return sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON request-log lines the workers wrote (one per request)."""
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{") and '"method"' in raw:
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(raw))
        return lines

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def settle(self, *, quiet_s: float = 2.0, timeout_s: float = 120.0) -> float:
        """Wait until the workers have finished what the last phase left queued (no request logged for
        `quiet_s`), so the next phase's latency and CPU are its own; the seconds it took."""
        started = last_change = time.monotonic()
        size = -1
        while time.monotonic() - started < timeout_s:
            now_size = self.log_path.stat().st_size
            if now_size != size:
                size, last_change = now_size, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                break
            time.sleep(0.25)
        return round(time.monotonic() - started, 1)


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workdir: Path, *, sample_every: float = 0.5, port: int = 0) -> Iterator[Server]:
    """gunicorn -c gunicorn.conf.py (unchanged) on `port` (0: a free one); workers' peak RSS sampled meanwhile."""
    port = port or free_port()
    log_path = workdir / f"gunicorn-{port}.log"
    server_env = dict(env, GUNICORN_BIND=f"{HOST}:{port}")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "rezvo_support.wsgi"],
            cwd=ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(url=f"http://{HOST}:{port}", process=process, log_path=log_path)
    workers = int(env.get("GUNICORN_WORKERS") or multiprocessing.cpu_count())
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(sample_every):
            server.sample_rss()

    thread = threading.Thread(target=sampler, daemon=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                # With preload_app the first worker answers while the master is still forking the others.
                if http_json("GET", f"{server.url}/health")[0] == 200 and len(server.worker_pids()) >= workers:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /health:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        thread.start()
        yield server
    finally:
        stop.set()
        server.sample_rss()
        process_group_stop(process, timeout=40)


def process_group_stop(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM to the process's group (it was started with start_new_session), SIGKILL after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def task_consumer(env: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`manage.py run_huey` beside the server, as `make run` and deploy/ run it (the rollup fold, mail,
    webhooks); stopped afterwards."""
    log_path = workdir / "huey.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_huey"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        process_group_stop(process, timeout=20)


def legs_run(legs: str, tmp: Path, run: Callable[[str, Path, dict[str, str]], int]) -> Iterator[tuple[str, int, Path]]:
    """Each leg named in `legs` ("sqlite,mongo"): `run(leg, result file, extra env)` gives its exit code; the
    MongoDB leg runs against a standalone SecantusDB server started for it. Yields (leg, code, result file)."""
    for leg in [name.strip() for name in legs.split(",") if name.strip()]:
        result = tmp / f"{leg}.json"
        if leg == "mongo":
            from tests.mongo_server import secantus_server

            with secantus_server(standalone=True) as uri:
                code = run(leg, result, {"MONGODB_URI": uri})
        else:
            code = run(leg, result, {})
        yield leg, code, result


def staff_token() -> str:
    """A superuser with an API token in the leg's database (call after django.setup())."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_superuser(username=f"bench-{secrets.token_hex(3)}", password=None)
    return Token.objects.create(user=user).key


def machine_description() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {mem_gib:.0f} GiB RAM, Linux {os.uname().release}, "
        f"Python {sys.version.split()[0]}; load average at start {load}"
    )


def _sections(text: str) -> tuple[str, dict[str, str]]:
    """A report's text before its first `## ` heading, and its sections by heading (without the verdict)."""
    head, *parts = text.split("\n## ")
    sections = {}
    for part in parts:
        title = part.split("\n", 1)[0].removesuffix(" (PASS)").removesuffix(" (FAIL)")
        sections[title] = "## " + part.rstrip("\n") + "\n"
    return head.rstrip("\n") + "\n", sections


def report_merge(path: Path, text: str) -> None:
    """Write `text` (a header and `## ` sections) into the report at `path`: its header and sections replace
    theirs, and the sections other benches wrote stay, after these (a lone bench reruns only its part)."""
    if not path.exists():
        path.write_text(text)
        return
    head, new = _sections(text)
    _, old = _sections(path.read_text())
    kept = [section for title, section in old.items() if title not in new]
    path.write_text("\n".join([head, *new.values(), *kept]))


def report_section_write(path: Path, *, title: str, command: str, lines: list[str], passed: bool) -> None:
    """Replace (or add) one bench's `## ...` section of a report (docs/benchmarks.md), the others untouched."""
    text = path.read_text() if path.exists() else ""
    section = f"{title} ({'PASS' if passed else 'FAIL'})\n\n`{command}`\n\n" + "\n".join(lines) + "\n"
    if title + " (" in text:
        head, tail = text.split(title + " (", 1)
        rest = tail.split("\n## ", 1)
        text = head + section + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
