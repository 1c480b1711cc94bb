"""The environment of a real `manage.py run_huey` consumer working on this test process's database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def consumer_env(queue: Path, *, smtp_port: int, **extra: str) -> dict[str, str]:
    """Env for a consumer on the SQLite queue file `queue`, mailing through a local SMTP server."""
    drop = ("REDIS_URL", "SQLITE_PATH", "MONGODB_NAME", "HUEY_IMMEDIATE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {
        "HUEY_SQLITE_PATH": str(queue),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_USE_TLS": "false",
        "SUPPORT_NOTIFY_EMAILS": "desk@example.com",
        "REZVO_SKIP_DOTENV": "true",
        **extra,
    }
    # The consumer works on the test database this process (and its live server) uses.
    env["MONGODB_NAME" if connection.vendor == "mongodb" else "SQLITE_PATH"] = str(connection.settings_dict["NAME"])
    return env


def wait_for(check: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll `check` every 0.2 s until it holds or `timeout` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


class Consumer:
    """A running consumer; `output` holds what it printed once it has stopped."""

    output = ""


@contextmanager
def real_consumer(queue: Path, *, smtp_port: int) -> Iterator[Consumer]:
    """`manage.py run_huey` on the queue file `queue` for the block, then stopped (SIGINT) and its output kept."""
    consumer = Consumer()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_huey", "--workers", "2", "--delay", "0.1", "--max-delay", "0.5"],
        cwd=ROOT,
        env=consumer_env(queue, smtp_port=smtp_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield consumer
    finally:
        process.send_signal(signal.SIGINT)
        try:
            consumer.output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            consumer.output, _ = process.communicate()
