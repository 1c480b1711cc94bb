"""One writer at a time on a SQLite file, queued on a lock that hands over at once.

SQLite lets one connection write at a time. A connection that finds the write lock taken waits in SQLite's
busy handler, which does not wait for the lock to be released: it sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25,
50, 50, 100 ms between tries, so a writer behind a 3 ms transaction often starts 20-50 ms later. Under
`make bench-polling` (SQLite, 20 users, two workers), 79% of write transactions found the lock taken on
their first try although it was held only ~15% of the time, and they waited 46 ms on average, up to 0.6 s.

Here every writer of the file (a write transaction, or a write statement outside one) first takes:

* a lock shared by the threads of its process (threading.Lock: a waiting thread wakes when it is released);
* then an flock on `<database>-writer.lock`, shared by the processes (gunicorn workers, the task consumer,
  management commands). Only the one thread of each process that holds the first lock asks for it, so it
  is tried again every millisecond at most, not slept on.

Both are given up at the end of the transaction (commit, rollback, or the connection closing) or the
statement. A writer that cannot have them within the connection's busy timeout gets SQLite's own
"database is locked" error. Programs that do not go through this backend (the sqlite3 shell) still meet
SQLite's lock, and its busy handler, as before.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from django.db.utils import OperationalError

#: Sleeps between tries of the file lock while another process holds it.
RETRY_SLEEPS_S = (0.0002, 0.0005, 0.001)
#: The words a statement that writes starts with (outside a transaction each is one on its own).
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
LOCKED = "database is locked"


class WriterLock:
    """The writer lock of one database file, in this process."""

    def __init__(self, database_path: str) -> None:
        self.path = f"{database_path}-writer.lock"
        self.threads = threading.Lock()
        self.fd: int | None = None

    def acquire(self, timeout_s: float) -> None:
        """Wait for the threads of this process, then for the other processes; OperationalError after
        `timeout_s` in all."""
        deadline = time.monotonic() + timeout_s
        if not self.threads.acquire(timeout=max(timeout_s, 0)):
            raise OperationalError(LOCKED)
        try:
            self._file_acquire(deadline)
        except BaseException:
            self.threads.release()
            raise

    def _file_acquire(self, deadline: float) -> None:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        tries = 0
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationalError(LOCKED) from None
                time.sleep(RETRY_SLEEPS_S[min(tries, len(RETRY_SLEEPS_S) - 1)])
                tries += 1

    def release(self) -> None:
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()

    def forget_after_fork(self) -> None:
        # A forked child shares the parent's open file, and so its flock: it must open its own. Closing the
        # inherited copy leaves the parent's lock as it is.
        self.threads = threading.Lock()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_locks: dict[str, WriterLock] = {}
_locks_lock = threading.Lock()


def writer_lock_for(database_path: str) -> WriterLock:
    path = os.path.abspath(database_path)
    with _locks_lock:
        lock = _locks.get(path)
        if lock is None:
            lock = _locks[path] = WriterLock(path)
        return lock


def _after_fork_in_child() -> None:
    global _locks_lock
    _locks_lock = threading.Lock()
    for lock in _locks.values():
        lock.forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def is_write(query: str) -> bool:
    return query.lstrip()[:8].upper().startswith(WRITE_VERBS)
