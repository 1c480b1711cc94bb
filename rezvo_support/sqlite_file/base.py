"""Django's SQLite backend, made safe against the database file being replaced or moved away under it.

Stock SQLite creates an empty database when the file is missing, and a connection kept between
requests (SQLITE_CONN_MAX_AGE) keeps writing to the file it opened even after that file was replaced
or unlinked: acknowledged writes then land in a file nobody will read again. Here:

* the file is opened with `mode=rw`, so a missing file is an error (DatabaseFileMissing), never a new
  empty database; only `manage.py migrate` (support/management/commands/migrate.py) and the test
  database creation make the file;
* the device and inode of the file each process first opened are remembered; before every query, at
  every commit and at the start and end of every request the path is checked against them. A missing
  file fails the query (the connection is closed, and opens again once the file is back); a
  different file fails it with DatabaseFileReplaced until the service restarts: the old file's -wal
  and -shm would be applied to the new one, and other workers may still hold the old file open.
  The restore procedure (README, deploy/README.md) is stop, restore, start.

A write racing the replacement inside the microseconds between the check and the statement is not
covered; everything acknowledged after the replacement is seen fails loudly (503).
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base, creation
from django.db.utils import OperationalError

from rezvo_support.sqlite_file.writer_lock import WriterLock, is_write, writer_lock_for


class DatabaseFileMissing(OperationalError):
    """The SQLite file is not at its path (moved away, volume unmounted)."""


class DatabaseFileReplaced(OperationalError):
    """The SQLite file at the path is not the one this process opened: restart after a restore."""


FileIdentity = tuple[int, int]
#: Per absolute path, the (device, inode) of the file this process opened first.
_opened: dict[str, FileIdentity] = {}
_opened_lock = threading.Lock()


def _identity(path: str) -> FileIdentity | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def file_problem(path: str) -> DatabaseFileMissing | DatabaseFileReplaced | None:
    """What is wrong with the file at `path` compared with the one this process opened, if anything."""
    current = _identity(path)
    if current is None:
        return DatabaseFileMissing(f"The SQLite database file {path} is missing.")
    expected = _opened.get(os.path.abspath(path))
    if expected is not None and expected != current:
        return DatabaseFileReplaced(
            f"The SQLite database file {path} was replaced while the service ran; restart the service."
        )
    return None


def database_files_pin() -> None:
    """Remember, at start-up, the file each database of this engine uses: a worker process that opens its
    first connection only after the file was replaced must refuse it too, not take the new file as its own."""
    from django.conf import settings

    for database in settings.DATABASES.values():
        name = str(database.get("NAME", ""))
        if database.get("ENGINE") != __package__ or not name or name == ":memory:" or name.startswith("file:"):
            continue
        identity = _identity(name)
        if identity is not None:
            with _opened_lock:
                _opened.setdefault(os.path.abspath(name), identity)


def forget_opened_file(path: str) -> None:
    """Accept whatever file is at `path` next (after a restart in-process: tests, management commands)."""
    with _opened_lock:
        _opened.pop(os.path.abspath(path), None)


def database_file_create(path: str) -> bool:
    """Create an empty database file if none is there (migrate on a fresh machine); True if it did."""
    target = Path(path)
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch()  # a zero-length file is a valid empty SQLite database
    return True


class DatabaseCreation(creation.DatabaseCreation):
    def _create_test_db(self, verbosity: int, autoclobber: bool, keepdb: bool = False) -> str:
        # A private Django method that django-stubs leaves out.
        name = super()._create_test_db(verbosity, autoclobber, keepdb)  # type: ignore[misc]
        if not self.is_in_memory_db(name):
            forget_opened_file(name)  # the old test database was just deleted
            database_file_create(name)
        return name


class WriterLockedCursor(base.SQLiteCursorWrapper):
    """Django's SQLite cursor; a write statement outside a transaction holds the writer lock while it runs."""

    database: DatabaseWrapper

    def execute(self, query: str, params: Any = None) -> Any:
        if not self.database.writer_lock_needed(query):
            return super().execute(query, params)
        with self.database.writer_locked():
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        if not self.database.writer_lock_needed(query):
            return super().executemany(query, param_list)
        with self.database.writer_locked():
            return super().executemany(query, param_list)


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's SQLite backend, with the file checks above and writers queued on a WriterLock
    (writer_lock.py says why)."""

    creation_class = DatabaseCreation
    _writer_held = False

    def _file_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        return None if self.creation.is_in_memory_db(name) or name.startswith("file:") else name

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        path = self._file_path()
        if path is not None:
            # Django opens SQLite with uri=True: mode=rw never creates a missing file.
            params["database"] = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=rw"
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        path = self._file_path()
        if path is None:
            return super().get_new_connection(conn_params)
        # Checked before opening: opening a replaced file would apply the old file's WAL to it.
        problem = file_problem(path)
        if problem is not None:
            raise problem
        connection = super().get_new_connection(conn_params)
        opened = _identity(path)
        if opened is not None:
            with _opened_lock:
                _opened.setdefault(os.path.abspath(path), opened)
        return connection

    def check_database_file(self) -> None:
        """Raise DatabaseFileMissing / DatabaseFileReplaced (closing the connection) if the file moved."""
        path = self._file_path()
        problem = None if path is None else file_problem(path)
        if problem is not None:
            if self.connection is not None and not self.in_atomic_block:
                self.close()  # inside a transaction: it rolls back first, the request's end closes it
            raise problem

    def create_cursor(self, name: str | None = None) -> Any:
        self.check_database_file()
        cursor = self.connection.cursor(factory=WriterLockedCursor)
        cursor.database = self
        return cursor

    # --- The writer lock -----------------------------------------------------------------------------
    def writer_lock(self) -> WriterLock | None:
        path = self._file_path()
        return None if path is None else writer_lock_for(path)

    def writer_timeout_s(self) -> float:
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def writer_lock_needed(self, query: str) -> bool:
        """A write that is a transaction of its own (autocommit, no atomic block) on a file database."""
        return not self._writer_held and self.get_autocommit() and not self.in_atomic_block and is_write(query)

    @contextmanager
    def writer_locked(self) -> Iterator[None]:
        self._writer_acquire()
        try:
            yield
        finally:
            self._writer_release()

    def _writer_acquire(self) -> None:
        lock = self.writer_lock()
        if lock is not None and not self._writer_held:
            lock.acquire(self.writer_timeout_s())
            self._writer_held = True

    def _writer_release(self) -> None:
        if self._writer_held:
            self._writer_held = False
            lock = self.writer_lock()
            if lock is not None:
                lock.release()

    def _start_transaction_under_autocommit(self) -> None:
        # Every atomic block on SQLite begins here (BEGIN IMMEDIATE takes SQLite's write lock at once).
        self._writer_acquire()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # private in Django
        except BaseException:
            self._writer_release()
            raise

    def _commit(self) -> None:
        try:
            # Writes made on the old file before it was replaced must not be acknowledged as stored.
            self.check_database_file()
            super()._commit()  # type: ignore[misc]  # private in Django, absent from django-stubs
        finally:
            self._writer_release()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # private in Django, absent from django-stubs
        finally:
            self._writer_release()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # private in Django, absent from django-stubs
        finally:
            self._writer_release()

    def close_if_unusable_or_obsolete(self) -> None:
        # At the start and end of each request: a kept connection must not outlive its file.
        super().close_if_unusable_or_obsolete()
        if self.connection is not None and not self.in_atomic_block:
            path = self._file_path()
            if path is not None and file_problem(path) is not None:
                self.close()
