"""Worker processes forked together open the shared SQLite files (rate limits, stream leases) at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from support.sqlite_files import sqlite_open

OPENERS = 8


def _open_when_all_are_ready(args: tuple[str, int]) -> str:
    path, _ = args
    _barrier.wait()
    db = sqlite_open(path, timeout=5)
    db.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")
    return str(db.execute("PRAGMA journal_mode").fetchone()[0])


_barrier: multiprocessing.synchronize.Barrier


def _init(barrier: multiprocessing.synchronize.Barrier) -> None:
    global _barrier
    _barrier = barrier


@pytest.mark.parametrize("attempt", range(6))
def test_processes_opening_a_new_file_together_all_get_it_in_wal_mode(tmp_path: Path, attempt: int) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(OPENERS)
    path = str(tmp_path / f"shared-{attempt}.sqlite3")
    with ProcessPoolExecutor(OPENERS, mp_context=context, initializer=_init, initargs=(barrier,)) as pool:
        modes = list(pool.map(_open_when_all_are_ready, [(path, i) for i in range(OPENERS)]))
    assert modes == ["wal"] * OPENERS


def test_it_gives_up_with_the_lock_error_after_the_timeout(tmp_path: Path) -> None:
    path = str(tmp_path / "held.sqlite3")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (k TEXT)")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        sqlite_open(path, timeout=0.2)
    holder.execute("ROLLBACK")
    assert sqlite_open(path, timeout=0.2).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
