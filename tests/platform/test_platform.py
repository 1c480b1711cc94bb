"""Settings, health, docs and production checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from rest_framework.test import APIClient

from rezvo_support import env

ROOT = Path(__file__).resolve().parents[2]


# --- Typed env helpers -----------------------------------------------------------------------
def test_env_bool_reads_common_spellings_and_refuses_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "Yes")
    assert env.env_bool("FLAG") is True
    monkeypatch.setenv("FLAG", "off")
    assert env.env_bool("FLAG", default=True) is False
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env.env_bool("FLAG")


def test_env_int_refuses_words_and_values_below_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ImproperlyConfigured, match="N must be an integer"):
        env.env_int("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match=">= 1"):
        env.env_int("N", 5, minimum=1)
    monkeypatch.delenv("N")
    assert env.env_int("N", 5) == 5


def test_env_decimal_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGET", "2.50")
    assert str(env.env_decimal("BUDGET", "0")) == "2.50"
    monkeypatch.setenv("BUDGET", "lots")
    with pytest.raises(ImproperlyConfigured, match="BUDGET"):
        env.env_decimal("BUDGET", "0")
    monkeypatch.setenv("ORIGINS", " https://a.io, ,https://b.io ")
    assert env.env_list("ORIGINS") == ["https://a.io", "https://b.io"]


def test_an_empty_value_means_the_default_for_every_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("S", "B", "L", "I", "C", "H"):
        monkeypatch.setenv(name, "  ")
    assert env.env_str("S", "fallback") == "fallback"
    assert env.env_bool("B", default=True) is True
    assert env.env_list("L", ["127.0.0.1", "localhost"]) == ["127.0.0.1", "localhost"]
    assert env.env_int("I", 7) == 7
    assert env.env_choice("C", "right", ("right", "left")) == "right"
    assert env.env_hex_colour("H", "#0f766e") == "#0f766e"


def test_the_dotenv_file_is_skipped_under_pytest_and_in_what_the_tests_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(env.SKIP_DOTENV)
    assert env.dotenv_skipped()  # this process: pytest is loaded
    assert os.environ.get("REZVO_PROBE") is None
    dotenv = tmp_path / ".env"
    dotenv.write_text("REZVO_PROBE=from-dotenv\n")
    probe = (
        "from pathlib import Path; from rezvo_support import env\n"
        f"if not env.dotenv_skipped(): env.load_dotenv(Path({str(dotenv)!r}))\n"
        "import os; print(os.environ.get('REZVO_PROBE'))"
    )
    base = {k: v for k, v in os.environ.items() if k != env.SKIP_DOTENV}

    def run(**extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env={**base, **extra}, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert run() == "from-dotenv"  # a plain process (runserver, gunicorn) reads it
    assert run(REZVO_SKIP_DOTENV="true") == "None"  # one a test run starts does not


def test_processes_started_by_the_tests_are_told_to_skip_the_dotenv_file() -> None:
    result = _manage("shell", "-c", "from rezvo_support import env; print(env.dotenv_skipped())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_an_empty_allowed_hosts_as_make_run_writes_it_keeps_the_debug_default() -> None:
    code = "from django.conf import settings; print(','.join(settings.ALLOWED_HOSTS))"
    result = _manage("shell", "-c", code, DEBUG="true", SECRET_KEY="x", ALLOWED_HOSTS="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "127.0.0.1,localhost"


def _manage(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "MONGODB_URI"}}
    base.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path: Path) -> None:
    result = _manage("check", DEBUG="false", SECRET_KEY="", ALLOWED_HOSTS="x.io", SQLITE_PATH=str(tmp_path / "d"))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_it_refuses_a_malformed_debug_value() -> None:
    result = _manage("check", DEBUG="sometimes")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_check_deploy_is_clean_under_production_settings() -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="a-long-random-production-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="support.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- Health ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_health_reports_ok_with_the_database_up(anon: APIClient) -> None:
    response = anon.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "queue": {"pending": 0}}


@pytest.mark.django_db
def test_health_is_503_with_a_reason_when_the_database_is_down(
    anon: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support import health

    def broken() -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(health, "database_ping", broken)
    response = anon.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert response.json()["reason"] == "ConnectionError"
    assert "connection refused" not in response.content.decode()  # public: no driver text


@pytest.mark.django_db
def test_api_answers_503_json_when_the_database_fails(staff: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import DatabaseError

    from support import selectors

    def broken(**kwargs: Any) -> None:
        raise DatabaseError("server selection timeout")

    monkeypatch.setattr(selectors, "analytics_summary", broken)
    response = staff.get("/api/support/analytics")
    assert response.status_code == 503
    assert "unavailable" in response.json()["detail"]


@pytest.mark.django_db
def test_an_unexpected_error_returns_json_without_a_traceback(
    staff: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support import selectors

    def boom(**kwargs: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(selectors, "analytics_summary", boom)
    staff.raise_request_exception = False
    response = staff.get("/api/support/analytics")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}
    assert b"secret internal detail" not in response.content


# --- Docs ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_openapi_schema_lists_every_operation(anon: APIClient) -> None:
    response = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "conversation_create",
        "message_create",
        "conversation_update",
        "conversation_list",
        "conversation_detail",
        "ticket_list",
        "analytics",
    } <= operations


@pytest.mark.django_db
def test_swagger_ui_loads_its_assets_from_this_server(anon: APIClient) -> None:
    response = anon.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    asset = next(part.split('"')[0] for part in html.split('src="')[1:] if "swagger-ui" in part)
    assert anon.get(asset).status_code == 200


def test_the_tests_run_on_the_database_the_leg_asks_for() -> None:
    expected = "mongodb" if os.environ.get("MONGODB_URI") else "sqlite"
    assert connection.vendor == expected


@pytest.mark.django_db
def test_the_schema_documents_pages_errors_and_the_widgets_shape(anon: APIClient) -> None:
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {op["operationId"]: op for path in schema["paths"].values() for op in path.values()}
    listed = operations["conversation_list"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][listed["$ref"].rsplit("/", 1)[1]]
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    for operation in operations.values():
        for status in ("401", "403", "503"):
            error = operation["responses"][status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}
    assert {"409", "413", "415", "429"} <= set(operations["message_create"]["responses"])
    assert "409" in operations["chat"]["responses"]
    event = operations["chat"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert event["properties"]["event"]["enum"] == ["start", "delta", "done", "error"]
    detail = operations["conversation_detail"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in detail["anyOf"]] == [
        "ConversationWithMessagesOutput",
        "ConversationDetailWidgetOutput",
    ]
