"""The widget's unchanged poll is answered before the session, CSRF, auth and DRF layers (support.api.poll_fast):
the same 304 and tag, the same limit counted once, and everything else left to the view."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from support import services
from support.api.conversations import ConversationViewSet
from support.models import Conversation

BASE = "/api/support"
ORIGIN = "https://venue.example"


def _url(conversation: Conversation) -> str:
    return f"{BASE}/conversations/{conversation.pk}/messages"


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests that reached the ViewSet (DRF's dispatch), by method."""
    calls: list[str] = []
    original = ConversationViewSet.dispatch

    def counting(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(request.method)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(ConversationViewSet, "dispatch", counting)
    return calls


def _opened(make_conversation: Any, widget: Any, **headers: str) -> tuple[Conversation, APIClient, str]:
    """A widget's conversation, its client and the ETag of its first poll (answered by the view)."""
    conversation, token = make_conversation()
    client = widget(token)
    return conversation, client, client.get(_url(conversation), **headers)["ETag"]


@pytest.mark.django_db
def test_an_unchanged_widget_poll_is_a_304_that_never_reaches_the_view(
    make_conversation: Any, widget: Any, dispatched: list[str]
) -> None:
    conversation, client, tag = _opened(make_conversation, widget)
    assert dispatched == ["GET"]

    unchanged = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag)

    assert unchanged.status_code == 304
    assert unchanged["ETag"] == tag
    assert unchanged["Cache-Control"] == "private, no-cache"
    assert dispatched == ["GET"], "the unchanged poll went through the whole stack"


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
@pytest.mark.django_db
def test_the_early_304_carries_the_cors_headers_the_widget_on_another_site_needs(
    make_conversation: Any, widget: Any, dispatched: list[str]
) -> None:
    conversation, client, tag = _opened(make_conversation, widget, HTTP_ORIGIN=ORIGIN)

    unchanged = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag, HTTP_ORIGIN=ORIGIN)

    assert unchanged.status_code == 304 and dispatched == ["GET"]
    assert unchanged["Access-Control-Allow-Origin"] == ORIGIN
    assert "etag" in unchanged["Access-Control-Expose-Headers"].lower()


@override_settings(SUPPORT_THROTTLE_IP_RATE="3/min")
@pytest.mark.django_db
def test_a_poll_the_early_path_passes_on_counts_once_in_the_limit(
    make_conversation: Any, widget: Any, staff_user: Any, dispatched: list[str]
) -> None:
    conversation, client, stale = _opened(make_conversation, widget, REMOTE_ADDR="10.4.4.4")  # hit 1
    services.conversation_reply(conversation=conversation, author=staff_user, content="Sam here.")

    changed = client.get(_url(conversation), HTTP_IF_NONE_MATCH=stale, REMOTE_ADDR="10.4.4.4")  # hit 2
    fresh, newest = changed["ETag"], f"{_url(conversation)}?after={changed.json()['messages'][-1]['id']}"
    unchanged = client.get(newest, HTTP_IF_NONE_MATCH=fresh, REMOTE_ADDR="10.4.4.4")  # hit 3
    refused = client.get(newest, HTTP_IF_NONE_MATCH=fresh, REMOTE_ADDR="10.4.4.4")  # hit 4

    assert changed.status_code == 200, "counted twice: once early, once by the view"
    assert [m["content"] for m in changed.json()["messages"]][-1] == "Sam here."
    assert unchanged.status_code == 304
    assert refused.status_code == 429 and refused.json()["reason"] == "widget_ip"
    assert dispatched == ["GET", "GET", "GET"]  # the first poll, the changed one and the refusal


@pytest.mark.django_db
def test_staff_and_wrong_tokens_go_on_to_the_view(
    make_conversation: Any, widget: Any, staff: APIClient, dispatched: list[str]
) -> None:
    conversation, token = make_conversation()
    tag = widget(token).get(_url(conversation))["ETag"]

    as_staff = staff.get(_url(conversation), HTTP_IF_NONE_MATCH=tag)
    wrong = widget("not-the-token").get(_url(conversation), HTTP_IF_NONE_MATCH=tag)
    post = widget(token).post(_url(conversation), {}, format="json", HTTP_IF_NONE_MATCH=tag)

    assert as_staff.status_code in (200, 304)
    assert wrong.status_code == 404
    assert post.status_code != 304
    assert dispatched == ["GET", "GET", "GET", "POST"]
