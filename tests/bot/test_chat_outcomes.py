"""The chat proxy and outcomes (issue 14): each turn recomputes the outcome, and `done` tells the widget
whether to ask "Did that answer your question?" (only under a substantive answer nobody was called in for)."""

from __future__ import annotations

from typing import Any

import pytest

from support import services
from support.models import Conversation, Outcome
from tests.bot.test_chat import BASE, post_chat

pytestmark = pytest.mark.django_db


@pytest.fixture
def offline(settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""
    services.knowledge_article_seed_samples()


@pytest.fixture
def chat(anon: Any, widget: Any) -> tuple[str, Any]:
    created = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json").json()
    return created["id"], widget(created["token"])


def test_done_asks_only_under_a_substantive_answer_and_each_turn_recomputes_the_outcome(
    offline: None, chat: tuple[str, Any]
) -> None:
    conversation_id, client = chat
    assert Conversation.objects.get(pk=conversation_id).outcome == Outcome.ABANDONED
    answered = post_chat(client, conversation_id, "How much does it cost?", stream=False)
    assert answered.status_code == 201
    assert answered.json()["ask_if_answered"] is True
    assert Conversation.objects.get(pk=conversation_id).outcome == Outcome.OPEN
    # No article matches: the offline responder hands it over, so there is nothing to ask about.
    handed = post_chat(client, conversation_id, "Can my parrot use the API for quantum stuff?", stream=False)
    assert handed.json()["ask_if_answered"] is False
    assert Conversation.objects.get(pk=conversation_id).outcome == Outcome.ESCALATED


def test_the_staff_view_of_done_says_the_same(offline: None, chat: tuple[str, Any], staff: Any) -> None:
    conversation_id, _client = chat
    response = post_chat(staff, conversation_id, "How much does it cost?", stream=False)
    assert response.status_code == 201, response.content
    assert response.json()["ask_if_answered"] is True
