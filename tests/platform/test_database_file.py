"""SQLite file safety: a missing file is an error, never a new empty database; a replaced one is refused.

The last two tests run the production gunicorn (kept connections, SQLITE_CONN_MAX_AGE=600) and take
the file away or replace it under live traffic, as an operator restoring a backup in place would.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from bench import harness
from rezvo_support.sqlite_file.base import (
    DatabaseFileMissing,
    DatabaseFileReplaced,
    DatabaseWrapper,
    forget_opened_file,
)
from tests.platform.scratch_sqlite import scratch_wrapper

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="the SQLite database file only")
BASE = "/api/support"


# --- In process: the backend on a scratch file -----------------------------------------------
@pytest.fixture
def scratch(tmp_path: Path, django_db_blocker: Any) -> Iterator[tuple[Path, DatabaseWrapper]]:
    path = tmp_path / "scratch.sqlite3"
    wrapper = scratch_wrapper(path)
    with django_db_blocker.unblock():
        yield path, wrapper
        wrapper.close()
    forget_opened_file(str(path))


def _insert(wrapper: DatabaseWrapper, n: int) -> None:
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (%s)", [n])


def test_it_refuses_to_open_a_missing_file_instead_of_creating_an_empty_database(
    tmp_path: Path, django_db_blocker: Any
) -> None:
    path = tmp_path / "missing.sqlite3"
    wrapper = DatabaseWrapper({**connection.settings_dict, "NAME": str(path)}, alias="scratch")
    with django_db_blocker.unblock(), pytest.raises(DatabaseFileMissing):
        wrapper.ensure_connection()
    assert not path.exists()


def test_a_kept_connection_fails_once_its_file_is_moved_away_and_works_again_when_it_is_back(
    scratch: tuple[Path, DatabaseWrapper],
) -> None:
    path, wrapper = scratch
    _insert(wrapper, 1)
    away = path.with_name("away.sqlite3")
    os.rename(path, away)
    with pytest.raises(DatabaseFileMissing):
        _insert(wrapper, 2)
    assert wrapper.connection is None, "the stale connection is closed"
    with pytest.raises(DatabaseFileMissing):
        _insert(wrapper, 3)
    assert not path.exists(), "no new empty database was created"
    os.rename(away, path)
    _insert(wrapper, 4)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT n FROM t ORDER BY n")
        assert [row[0] for row in cursor.fetchall()] == [1, 4]


def test_a_replaced_file_is_refused_until_the_process_starts_again(scratch: tuple[Path, DatabaseWrapper]) -> None:
    path, wrapper = scratch
    _insert(wrapper, 1)
    restored = path.with_name("restored.sqlite3")
    with sqlite3.connect(path) as source, sqlite3.connect(restored) as target:
        source.backup(target)
    source.close()
    target.close()
    os.replace(restored, path)
    with pytest.raises(DatabaseFileReplaced):
        _insert(wrapper, 2)
    assert wrapper.connection is None
    with pytest.raises(DatabaseFileReplaced):  # a new connection is refused too
        wrapper.ensure_connection()
    forget_opened_file(str(path))  # what a restart does
    _insert(wrapper, 3)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT n FROM t ORDER BY n")
        assert [row[0] for row in cursor.fetchall()] == [1, 3]


def test_a_transaction_whose_file_was_replaced_before_its_commit_fails_and_is_not_acknowledged(
    scratch: tuple[Path, DatabaseWrapper],
) -> None:
    path, wrapper = scratch
    _insert(wrapper, 1)
    shutil.copy(path, path.with_name("copy.sqlite3"))
    wrapper.set_autocommit(False)
    _insert(wrapper, 2)
    os.replace(path.with_name("copy.sqlite3"), path)
    with pytest.raises(DatabaseFileReplaced):
        wrapper.commit()
    assert wrapper.connection is None, "closed without committing to the replaced file"


def test_migrate_creates_the_database_file_on_a_fresh_machine(tmp_path: Path) -> None:
    path = tmp_path / "new" / "db.sqlite3"
    env = dict(os.environ, SQLITE_PATH=str(path), DEBUG="true", SECRET_KEY="test")
    env.pop("MONGODB_URI", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=harness.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Created the empty database file" in result.stdout
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM support_conversations").fetchone() == (0,)
    raw.close()


# --- A real gunicorn with kept connections ---------------------------------------------------
@dataclass
class Live:
    env: dict[str, str]
    workdir: Path
    path: Path
    staff_token: str


@pytest.fixture
def live() -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="rezvo-dbfile-") as tmp:
        workdir = Path(tmp)
        env = harness.leg_environment(workdir)
        env.pop("ROOT_URLCONF")
        env.update(SQLITE_CONN_MAX_AGE="600", SQLITE_BUSY_TIMEOUT_S="2", GUNICORN_WORKERS="2", GUNICORN_THREADS="8")
        harness.prepare_database(env)
        token = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", "from bench.harness import staff_token; print(staff_token())"],
            cwd=harness.ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.split()[-1]
        yield Live(env=env, workdir=workdir, path=Path(env["SQLITE_PATH"]), staff_token=token)


def _create(url: str) -> tuple[int, Any]:
    """POST a conversation; (0, error) when no answer comes within a few seconds (not acknowledged)."""
    request = urllib.request.Request(
        f"{url}{BASE}/conversations", data=b'{"source": "web"}', headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except OSError as exc:  # gunicorn's gthread worker now and then leaves a connection unanswered
        return 0, str(exc)


@dataclass
class Creator:
    """Keeps creating conversations, recording when each request started and what it was told."""

    url: str
    results: list[tuple[float, int, Any]] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            status, data = _create(self.url)
            self.results.append((started, status, data))
            time.sleep(0.01)


def _traffic(url: str, n: int) -> tuple[list[Creator], threading.Event, list[threading.Thread]]:
    creators = [Creator(url=url) for _ in range(n)]
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,)) for c in creators]
    for thread in threads:
        thread.start()
    return creators, stop, threads


def _answered_since(creators: list[Creator], moment: float, *, at_least: int, within: float = 30.0) -> None:
    """Wait until `at_least` requests started after `moment` have their answers (or `within` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if sum(started > moment + 0.05 for c in creators for started, _, _ in c.results) >= at_least:
            return
        time.sleep(0.1)


def _stored_ids(live: Live, url: str, ids: list[str]) -> set[str]:
    headers = {"Authorization": f"Token {live.staff_token}"}
    return {cid for cid in ids if harness.http_json("GET", f"{url}{BASE}/conversations/{cid}", None, headers)[0] == 200}


def test_a_file_replaced_under_a_running_server_is_reported_and_no_later_write_is_acknowledged(live: Live) -> None:
    with harness.gunicorn(live.env, live.workdir) as server:
        creators, stop, threads = _traffic(server.url, 6)
        try:
            time.sleep(1.0)
            backup = live.workdir / "backup.sqlite3"
            with sqlite3.connect(live.path) as source, sqlite3.connect(backup) as target:
                source.backup(target)  # what deploy/backup.sh does
            source.close()
            target.close()
            os.replace(shutil.copy(backup, live.workdir / "restore.sqlite3"), live.path)
            replaced_at = time.monotonic()
            _answered_since(creators, replaced_at, at_least=12)
            health = harness.http_json("GET", f"{server.url}/health")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    results = [r for c in creators for r in c.results]
    before = [data["id"] for started, status, data in results if status == 201 and started < replaced_at]
    after = [(status, data) for started, status, data in results if started > replaced_at + 0.05]
    assert before, "traffic must flow before the replacement"
    assert after, "traffic must continue after the replacement"
    assert health == (503, {"status": "error", "database": "unavailable", "reason": "DatabaseFileReplaced"})
    # Every write after the replacement fails loudly: none is acknowledged into the replaced file.
    # (0: no answer at all, which happens with gthread now and then, replaced file or not.)
    assert {status for status, _ in after} <= {503, 0}, after[:3]
    assert all(data.get("detail") for status, data in after if status == 503)
    assert [status for status, _ in after].count(503) >= len(after) // 2, after[:5]

    # The restore procedure: stop (done), drop the replaced file's leftover -wal/-shm, put the backup, start.
    for leftover in ("-wal", "-shm"):
        Path(f"{live.path}{leftover}").unlink(missing_ok=True)
    shutil.copy(backup, live.path)
    with harness.gunicorn(live.env, live.workdir) as server:
        assert harness.http_json("GET", f"{server.url}/health")[0] == 200
        with sqlite3.connect(backup) as raw:
            in_backup = {str(row[0]) for row in raw.execute("SELECT id FROM support_conversations")}
        raw.close()
        assert in_backup and _stored_ids(live, server.url, sorted(in_backup)) == in_backup
        assert _create(server.url)[0] == 201


def test_a_file_moved_away_under_a_running_server_is_503_and_never_a_new_empty_database(live: Live) -> None:
    with harness.gunicorn(live.env, live.workdir) as server:
        creators, stop, threads = _traffic(server.url, 6)
        try:
            time.sleep(1.0)
            away = live.path.with_name("away.sqlite3")
            os.rename(live.path, away)
            moved_at = time.monotonic()
            _answered_since(creators, moved_at, at_least=12)
            health_away = harness.http_json("GET", f"{server.url}/health")
            created_away = _create(server.url)
            assert not live.path.exists(), "nothing may create a new empty database at the path"
            os.rename(away, live.path)
            back_at = time.monotonic()
            _answered_since(creators, back_at, at_least=6)
            health_back = harness.http_json("GET", f"{server.url}/health")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        results = [r for c in creators for r in c.results]
        away_answers = [status for started, status, _ in results if moved_at + 0.05 < started < back_at]
        acked = [data["id"] for _, status, data in results if status == 201]
        stored = _stored_ids(live, server.url, acked)

    assert health_away == (503, {"status": "error", "database": "unavailable", "reason": "DatabaseFileMissing"})
    assert created_away[0] == 503 and created_away[1]["detail"]
    # 503 while it is away (a 201 is a request the server only reached once it was back: stored, see below).
    assert away_answers.count(503) >= len(away_answers) // 2, away_answers[:10]
    assert health_back[0] == 200
    assert any(started > back_at for started, status, _ in results if status == 201), "it recovers by itself"
    assert stored == set(acked), "every acknowledged create is in the database"
