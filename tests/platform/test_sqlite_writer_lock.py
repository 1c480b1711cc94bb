"""SQLite writers queue on the writer lock (rezvo_support/sqlite_file/writer_lock.py), not in SQLite's busy
handler: a transaction holds it until it ends, a write outside one while it runs, and other processes see it."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.utils import OperationalError

from rezvo_support.sqlite_file.base import DatabaseWrapper, forget_opened_file
from rezvo_support.sqlite_file.writer_lock import writer_lock_for
from support.models import Conversation
from tests.platform.scratch_sqlite import scratch_wrapper

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="the SQLite backend only")


def _lock_path() -> str:
    return f"{os.path.abspath(connection.settings_dict['NAME'])}-writer.lock"


@pytest.fixture
def other_process() -> Iterator[int]:
    """The writer lock file opened on its own, as another process opens it (its own open file)."""
    fd = os.open(_lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    yield fd
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _taken_elsewhere(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _create_in_thread(done: list[Any]) -> threading.Thread:
    def create() -> None:
        try:
            done.append(Conversation.objects.create(source="web", token_hash="x").pk)
        except Exception as error:  # noqa: BLE001 - reported to the test
            done.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=create)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_transaction_holds_the_writer_lock_until_it_ends(other_process: int) -> None:
    with transaction.atomic():
        Conversation.objects.create(source="web", token_hash="x")
        assert _taken_elsewhere(other_process)
    assert not _taken_elsewhere(other_process)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_fails_gives_the_writer_lock_back(other_process: int) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Conversation.objects.create(source="web", token_hash="x")
        assert _taken_elsewhere(other_process)
        raise RuntimeError("rolled back")
    assert not _taken_elsewhere(other_process)
    assert not Conversation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_write_outside_a_transaction_waits_for_a_writer_in_another_process(other_process: int) -> None:
    fcntl.flock(other_process, fcntl.LOCK_EX)
    done: list[Any] = []
    thread = _create_in_thread(done)
    thread.join(timeout=0.3)
    assert thread.is_alive() and not done, "the write did not wait for the other process's writer"
    fcntl.flock(other_process, fcntl.LOCK_UN)
    thread.join(timeout=10)
    assert len(done) == 1 and isinstance(done[0], int), done
    assert Conversation.objects.filter(pk=done[0]).exists()


@pytest.mark.django_db(transaction=True)
def test_a_writer_in_another_thread_waits_for_the_transaction_to_commit(other_process: int) -> None:
    done: list[Any] = []
    with transaction.atomic():
        Conversation.objects.create(source="web", token_hash="first")
        thread = _create_in_thread(done)
        thread.join(timeout=0.3)
        assert thread.is_alive() and not done
    thread.join(timeout=10)
    assert len(done) == 1 and isinstance(done[0], int), done
    assert Conversation.objects.count() == 2


@pytest.fixture
def scratch(tmp_path: Path, django_db_blocker: Any) -> Iterator[tuple[DatabaseWrapper, int]]:
    """A connection to a scratch file whose busy timeout is 0.2 s, and the writer lock file opened apart."""
    path = tmp_path / "scratch.sqlite3"
    wrapper = scratch_wrapper(path, timeout=0.2)
    fd = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    with django_db_blocker.unblock():
        yield wrapper, fd
        wrapper.close()
    os.close(fd)
    forget_opened_file(str(path))


def test_a_writer_that_waits_longer_than_the_busy_timeout_gets_database_is_locked(
    scratch: tuple[DatabaseWrapper, int],
) -> None:
    wrapper, fd = scratch
    fcntl.flock(fd, fcntl.LOCK_EX)
    with pytest.raises(OperationalError, match="database is locked"), wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (%s)", [1])
    fcntl.flock(fd, fcntl.LOCK_UN)
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (%s)", [2])
        cursor.execute("SELECT n FROM t")
        assert cursor.fetchall() == [(2,)]


def test_a_forked_process_takes_the_writer_lock_on_a_file_of_its_own(tmp_path: Path) -> None:
    # gunicorn forks its workers from the master: a worker sharing the master's open lock file would share
    # its flock too, and two workers could then both hold it.
    lock = writer_lock_for(str(tmp_path / "forked.sqlite3"))
    lock.acquire(1.0)
    lock.threads.release()  # this process's threads are free; its flock is held
    try:
        pid = os.fork()
        if pid == 0:  # the child: it must not get the lock while this process holds it
            try:
                lock.acquire(0.2)
            except OperationalError:
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the forked process took a lock its parent holds"
    finally:
        lock.threads.acquire()
        lock.release()
