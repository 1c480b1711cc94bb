"""Small SQLite files that several worker processes share (the rate-limit counters, the stream leases).

Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once,
without calling the busy handler, when two connections try it together (it would deadlock otherwise).
Workers forked together do exactly that on a fresh file, so the switch is retried until the timeout.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path


def sqlite_open(path: str, *, timeout: float) -> sqlite3.Connection:
    """An autocommit connection to `path` in WAL mode, waiting up to `timeout` seconds for other openers."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                db.close()
                raise
            time.sleep(random.uniform(0.005, 0.05))
