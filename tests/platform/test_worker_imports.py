"""What a gunicorn worker loads (issue 13): packages only one path needs are imported by that path.

The anthropic SDK (about 50 MB) by the first Claude call, pymongo (about 20 MB) on the MongoDB leg only,
drf_spectacular's schema generator only to generate a schema. bench/memory.py measures what that saves.
Under gunicorn with Claude configured, the master imports the SDK once before forking (shared pages).
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest
from django.db import DatabaseError, connection

from support import db
from support.api import openapi
from support.bot import claude

ROOT = Path(__file__).resolve().parents[2]

#: Modules a worker serving the API must not import, and who should: the Claude call, the MongoDB leg,
#: the schema and docs views. (drf_spectacular's package itself is an installed app, loaded by
#: django.setup(); its decorators module is light. The generator is what weighs.)
LAZY_MODULES = (
    "anthropic",
    "httpx2",
    "pymongo",
    "drf_spectacular.openapi",
    "drf_spectacular.views",
    # The knowledge base's ranking (past SUPPORT_KB_PROMPT_TOKENS) and the gaps page's grouping.
    "numpy",
    "rank_bm25",
    "rapidfuzz",
)

_LOAD_THE_APP = """
import json, sys
import rezvo_support.wsgi
from django.urls import get_resolver
get_resolver().url_patterns  # the URLconf, and through it every view module
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {"anthropic", "httpx2", "pymongo",
                 "numpy", "rank_bm25", "rapidfuzz"}
                 or name.startswith(("drf_spectacular.openapi", "drf_spectacular.views")))))
"""


def _loaded_by_the_wsgi_app(**extra_env: str) -> list[str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="rezvo_support.settings", **extra_env)
    env.pop("MONGODB_URI", None)  # the SQLite leg, whichever leg runs this test
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_THE_APP], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_the_wsgi_app_and_its_urlconf_load_neither_the_sdk_nor_pymongo_nor_the_schema_generator() -> None:
    assert _loaded_by_the_wsgi_app() == []


def test_the_production_settings_load_none_of_them_either() -> None:
    production = {"DEBUG": "false", "SECRET_KEY": "test-only-not-secret", "ALLOWED_HOSTS": "testserver"}
    assert _loaded_by_the_wsgi_app(**production) == []


def test_the_deadline_error_made_on_first_use_is_one_class_and_an_sdk_error() -> None:
    first = claude.ClaudeDeadlineExceeded
    assert first is claude.ClaudeDeadlineExceeded
    assert issubclass(first, anthropic.AnthropicError)
    assert f"{first.__module__}.{first.__qualname__}" == "support.bot.claude.ClaudeDeadlineExceeded"


def test_the_claude_module_still_says_which_attributes_it_lacks() -> None:
    try:
        claude.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")


def test_driver_errors_count_as_database_errors_only_on_the_leg_that_has_the_driver() -> None:
    if connection.vendor == "mongodb":
        from pymongo.errors import PyMongoError

        assert db.DATABASE_ERRORS == (DatabaseError, PyMongoError)
    else:
        assert db.DATABASE_ERRORS == (DatabaseError,)


def test_a_view_decorated_after_the_first_schema_is_documented_at_once() -> None:
    openapi.apply_schema_extensions()

    def late_view() -> None: ...

    openapi.extend_schema(operation_id="late")(late_view)
    assert "schema" in late_view.kwargs  # type: ignore[attr-defined]  # drf_spectacular's own attribute


# --- gunicorn.conf.py: the workers are forked from a loaded app --------------------------------
def _gunicorn_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_the_workers_are_forked_from_a_loaded_app_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUNICORN_PRELOAD", raising=False)
    assert _gunicorn_config(monkeypatch)["preload_app"] is True
    assert _gunicorn_config(monkeypatch, GUNICORN_PRELOAD="false")["preload_app"] is False


def test_it_runs_one_worker_process_per_core_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: 3)
    assert _gunicorn_config(monkeypatch)["workers"] == 3
    assert _gunicorn_config(monkeypatch, GUNICORN_WORKERS="5")["workers"] == 5


def test_the_default_stream_slots_leave_a_quarter_of_the_default_threads_free(monkeypatch: pytest.MonkeyPatch) -> None:
    # settings.py reads the same GUNICORN_THREADS as gunicorn.conf.py; with two defaults that disagree a
    # worker would admit more replies than it has threads, and /health and staff would queue behind them.
    from django.conf import settings

    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    threads = _gunicorn_config(monkeypatch)["threads"]
    assert "GUNICORN_THREADS" not in os.environ and "SUPPORT_STREAMS_PER_WORKER" not in os.environ
    assert settings.SUPPORT_STREAMS_PER_WORKER == threads - threads // 4


@pytest.mark.django_db(transaction=True)
def test_the_master_closes_its_database_connection_before_forking(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _gunicorn_config(monkeypatch, GUNICORN_PRELOAD="true")
    connection.ensure_connection()
    assert connection.connection is not None
    try:
        config["when_ready"](None)
    finally:
        gc.unfreeze()  # the hook freezes what the master loaded; this process goes on collecting
    assert connection.connection is None


_MASTER_BEFORE_FORK = """
import json, runpy, sys
import rezvo_support.wsgi
config = runpy.run_path("gunicorn.conf.py")
config["when_ready"](None)
print(json.dumps("anthropic" in sys.modules))
"""


def _master_imports_the_sdk(**extra_env: str) -> bool:
    """Whether gunicorn's master, in a fresh interpreter, has the SDK loaded once when_ready has run."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="rezvo_support.settings", **extra_env)
    env.pop("MONGODB_URI", None)
    result = subprocess.run(
        [sys.executable, "-c", _MASTER_BEFORE_FORK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported: bool = json.loads(result.stdout.strip().splitlines()[-1])
    return imported


def test_the_master_imports_the_sdk_before_forking_when_claude_is_configured() -> None:
    assert _master_imports_the_sdk(ANTHROPIC_API_KEY="test-key-not-a-secret", GUNICORN_PRELOAD_SDK="true")


def test_the_master_leaves_the_sdk_alone_without_a_key_or_when_told_not_to() -> None:
    assert not _master_imports_the_sdk(ANTHROPIC_API_KEY="", GUNICORN_PRELOAD_SDK="true")
    assert not _master_imports_the_sdk(ANTHROPIC_API_KEY="test-key-not-a-secret", GUNICORN_PRELOAD_SDK="false")


def test_the_sdk_loaded_before_the_first_call_is_the_one_the_calls_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claude, "_sdk", None)
    claude.sdk_load()
    loaded = claude._sdk
    assert loaded is not None
    assert claude.ClaudeDeadlineExceeded is loaded[0]


@pytest.mark.django_db(transaction=True)
def test_a_worker_does_not_use_a_connection_the_master_opened_after_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _gunicorn_config(monkeypatch, GUNICORN_PRELOAD="true")
    connection.ensure_connection()
    config["post_fork"](None, None)
    assert connection.connection is None
