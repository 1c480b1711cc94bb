"""Issue 10, "First hour as a new user": the API and settings side (the browser side: test_widget_ux_e2e.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from support import colours, services

pytestmark = pytest.mark.django_db

BASE = "/api/support"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def offline(settings: Any) -> None:
    """No Claude key: the knowledge base answers, so no network is involved."""
    settings.ANTHROPIC_API_KEY = ""
    services.knowledge_article_seed_samples()


def _chat_client(anon: APIClient, widget: Any) -> tuple[APIClient, str]:
    created = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json").json()
    return widget(created["token"]), created["id"]


def _body(response: Any) -> str:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


# --- Content negotiation on POST conversations/{id}/chat -------------------------------------
@pytest.mark.parametrize(
    "accept",
    ["text/event-stream", "text/event-stream, application/json;q=0.5", "text/*", "*/*", "application/json"],
)
def test_a_client_that_accepts_the_event_stream_gets_the_stream(
    anon: APIClient, widget: Any, offline: None, accept: str
) -> None:
    client, conversation_id = _chat_client(anon, widget)
    response = client.post(
        f"{BASE}/conversations/{conversation_id}/chat",
        {"message": "How much does Rezvo cost?", "stream": True},
        format="json",
        HTTP_ACCEPT=accept,
    )
    assert response.status_code == 200, _body(response)
    assert response["Content-Type"] == "text/event-stream"
    assert "event: done" in _body(response)


def test_the_body_stream_flag_still_decides_whatever_the_accept(anon: APIClient, widget: Any, offline: None) -> None:
    client, conversation_id = _chat_client(anon, widget)
    response = client.post(
        f"{BASE}/conversations/{conversation_id}/chat",
        {"message": "How much does Rezvo cost?", "stream": False},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert response.status_code == 201, _body(response)
    assert response.json()["text"]


def test_errors_to_an_event_stream_client_are_json_naming_the_field(anon: APIClient, widget: Any) -> None:
    client, conversation_id = _chat_client(anon, widget)
    response = client.post(
        f"{BASE}/conversations/{conversation_id}/chat", {"stream": True}, format="json", HTTP_ACCEPT="text/event-stream"
    )
    assert response.status_code == 400
    assert "message" in response.json()["errors"]


def test_an_accept_that_admits_neither_json_nor_the_stream_is_still_refused(anon: APIClient, widget: Any) -> None:
    client, conversation_id = _chat_client(anon, widget)
    response = client.post(
        f"{BASE}/conversations/{conversation_id}/chat",
        {"message": "hi", "stream": True},
        format="json",
        HTTP_ACCEPT="image/png",
    )
    assert response.status_code == 406


# --- Default limits fit a shared IP ----------------------------------------------------------
def _per_hour(rate: str) -> float:
    count, _, period = rate.partition("/")
    return int(count) * 3600 / {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def _default(name: str) -> str:
    """The setting's default: read by a fresh process with no such variable (nor .env) in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORT_THROTTLE_")}
    code = f"from django.conf import settings; print(settings.{name})"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**env, "DEBUG": "true", "SECRET_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_default_limits_leave_room_for_an_office_or_a_mobile_carrier_behind_one_ip() -> None:
    # A morning of an office's staff, or a carrier's NAT, opening chats: hundreds of new conversations an
    # hour from one address (Chatwoot allows 30 a minute), and several at once.
    create = _default("SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE")
    assert _per_hour(create) >= 1000 and _per_hour(create) / 60 >= 20, create
    calls = _default("SUPPORT_THROTTLE_IP_RATE")
    assert _per_hour(calls) / 60 >= 300, calls
    for name in ("SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE", "SUPPORT_THROTTLE_IP_RATE"):
        line = next(x for x in (ROOT / ".env.example").read_text().splitlines() if x.startswith(f"{name}="))
        assert line == f"{name}={_default(name)}", ".env.example must show the default"


# --- One brand colour for the widget and the dashboard ---------------------------------------
@pytest.mark.parametrize("colour", ["#fde047", "#0f766e", "#1e1b4b", "#fff", "#777777"])
def test_the_dashboard_accent_comes_from_the_brand_colour_with_readable_text(settings: Any, colour: str) -> None:
    settings.SUPPORT_WIDGET_PRIMARY_COLOUR = colour
    response = Client().get("/brand.css")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/css")
    css = dict(re.findall(r"--([\w-]+): (#[0-9a-f]{6}|#[0-9a-f]{3});", response.content.decode()))
    assert css["brand"] == colour
    brand = colours.rgb(colour)
    assert colours.contrast(colours.rgb(css["brand-ink"]), brand) >= 4.5
    for surface in ("#ffffff", "#f5f6f8", css["brand-soft"]):  # links and chips: page, cards, the tint
        assert colours.contrast(colours.rgb(css["brand-text"]), colours.rgb(surface)) >= 4.5


def test_every_dashboard_page_links_the_brand_stylesheet() -> None:
    html = Client().get("/accounts/login/").content.decode()
    assert html.index("dashboard.css") < html.index('href="/brand.css"')  # after, so it wins
