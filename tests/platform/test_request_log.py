"""One JSON line per request on stdout: method, path, status, latency, request id; no secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
BASE = "/api/support"


def request_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if "method" in line]


def test_each_request_writes_one_json_line(anon: APIClient, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    created = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json")
    anon.get("/health")
    lines = request_lines(capsys.readouterr().out)
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", f"{BASE}/conversations", 201),
        ("GET", "/health", 200),
    ]
    first = lines[0]
    assert set(first) == {"ts", "method", "path", "status", "latency_ms", "request_id"}
    assert first["ts"].endswith("Z")
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] >= 0
    assert first["request_id"] == created["X-Request-ID"]


def test_it_never_logs_tokens_bodies_or_query_strings(
    anon: APIClient, staff: APIClient, widget: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    created = anon.post(f"{BASE}/conversations", {"user_id": "customer-secret-id"}, format="json").json()
    widget(created["token"]).post(
        f"{BASE}/conversations/{created['id']}/messages",
        {"role": "user", "content": "my card number is 4111"},
        format="json",
    )
    staff.get(f"{BASE}/conversations?q=4111")
    out = capsys.readouterr().out
    assert len(request_lines(out)) == 3
    for secret in (created["token"], "4111", "customer-secret-id", staff._credentials["HTTP_AUTHORIZATION"][6:]):
        assert secret not in out


def test_a_proxys_request_id_is_kept_and_a_forged_one_replaced(
    anon: APIClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    kept = anon.get("/health", HTTP_X_REQUEST_ID="nginx-4f2a9c")
    replaced = anon.get("/health", HTTP_X_REQUEST_ID='x" , "status": 200, "evil": "')
    assert kept["X-Request-ID"] == "nginx-4f2a9c"
    assert replaced["X-Request-ID"] != 'x" , "status": 200, "evil": "'
    lines = request_lines(capsys.readouterr().out)
    assert [line["request_id"] for line in lines] == ["nginx-4f2a9c", replaced["X-Request-ID"]]
    assert all("evil" not in line for line in lines)


def test_a_path_with_line_breaks_stays_on_one_line(anon: APIClient, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    anon.get(f"{BASE}/conversations/1%0D%0A%7B%22status%22%3A200%7D")
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1
    assert json.loads(lines[0])["status"] == 404


def test_errors_are_logged_with_their_status(staff: APIClient, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    staff.get(f"{BASE}/analytics?days=0")
    staff.delete(f"{BASE}/conversations")
    assert [line["status"] for line in request_lines(capsys.readouterr().out)] == [400, 405]


def test_a_streamed_chat_reply_is_logged_once_when_the_stream_ends(
    anon: APIClient, widget: Any, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.ANTHROPIC_API_KEY = ""  # the knowledge base answers: no Claude involved
    created = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json").json()
    capsys.readouterr()
    response = widget(created["token"]).post(
        f"{BASE}/conversations/{created['id']}/chat", {"message": "How much is it?"}, format="json"
    )
    assert request_lines(capsys.readouterr().out) == [], "not before the stream has been sent"
    body = b"".join(response.streaming_content)
    response.close()
    assert b"event: done" in body
    lines = request_lines(capsys.readouterr().out)
    assert [(line["path"], line["status"]) for line in lines] == [(f"{BASE}/conversations/{created['id']}/chat", 200)]
    assert lines[0]["request_id"] == response["X-Request-ID"]
