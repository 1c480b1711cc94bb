"""conversation_get: the conversation, or None when the id names none (the API and dashboard answer 404)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support import selectors

pytestmark = pytest.mark.django_db


def test_it_returns_the_conversation_for_its_id(make_conversation: Callable[..., Any]) -> None:
    conversation, _token = make_conversation()
    found = selectors.conversation_get(conversation_id=str(conversation.pk))
    assert found is not None
    assert found.pk == conversation.pk


def test_it_returns_none_for_an_id_no_conversation_has(make_conversation: Callable[..., Any]) -> None:
    conversation, _token = make_conversation()
    conversation.delete()
    assert selectors.conversation_get(conversation_id=str(conversation.pk)) is None


@pytest.mark.parametrize("raw", ["not-an-id", "", None])
def test_it_returns_none_for_an_id_that_cannot_be_one(raw: object) -> None:
    assert selectors.conversation_get(conversation_id=raw) is None


def test_it_returns_none_for_another_spelling_of_an_existing_id(make_conversation: Callable[..., Any]) -> None:
    # " 1" or "01" would each get their own per-conversation rate limit if they were read as 1.
    conversation, _token = make_conversation()
    assert selectors.conversation_get(conversation_id=f" {conversation.pk}") is None
    assert selectors.conversation_get(conversation_id=f"0{conversation.pk}") is None
