"""Issue 10, "First hour as a new user": the API and settings side (the browser side: test_widget_ux_e2e.py)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from support import services

pytestmark = pytest.mark.django_db

BASE = "/api/support"


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
