"""Issue 13: once a thread's connection is warm, logging a widget's pair, with or without an Idempotency-Key,
runs statements prepared once per connection; the ORM compiles no query (it cost about as much CPU as the
database work of the pair), on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.models.sql.query import Query
from django.test import override_settings

from support.models import IdempotencyRecord, Message

# The task queue as in production: the rollup fold runs in the consumer, not in the request.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("task_queue")]

PAIR = {"user_message": "Where is my booking?", "assistant_message": "Under My bookings.", "output_tokens": 105}


def _post(client: Any, conversation: Any, **headers: str) -> Any:
    response = client.post(f"/api/support/conversations/{conversation.pk}/messages", PAIR, format="json", **headers)
    assert response.status_code == 201, response.content
    return response


def _no_compiler(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the ORM compiled a query")


@override_settings(SUPPORT_CLIENT_LOGGING="seed")
@pytest.mark.parametrize("key", ["", "pair-2"])
def test_a_warm_widget_pair_compiles_no_query(
    key: str, make_conversation: Callable[..., Any], widget: Callable[[str], Any], monkeypatch: Any
) -> None:
    conversation, token = make_conversation()
    client = widget(token)
    # The first pair records the question and moves the outcome; with a key, so both fetches are prepared.
    _post(client, conversation, HTTP_IDEMPOTENCY_KEY="pair-1")
    _post(client, conversation)
    with monkeypatch.context() as patched:
        patched.setattr(Query, "get_compiler", _no_compiler)
        answer = _post(client, conversation, **({"HTTP_IDEMPOTENCY_KEY": key} if key else {})).json()
    assert Message.objects.filter(conversation=conversation).count() == 6
    if key:
        record = IdempotencyRecord.objects.get(conversation=conversation, key=key)
        assert record.response == answer
        replay = _post(client, conversation, HTTP_IDEMPOTENCY_KEY=key)
        assert replay.json() == answer and replay["Idempotent-Replayed"] == "true"
        assert Message.objects.filter(conversation=conversation).count() == 6
