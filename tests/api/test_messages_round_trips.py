"""Issue 13: a logged pair costs at most 4 database round trips without an Idempotency-Key and 6 with one,
on both databases, counted over the whole request (statements on SQLite, driver commands on MongoDB)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from support.models import Conversation, Message
from tests.fakes.round_trips import round_trips

# The task queue as in production: the rollup fold it is asked for runs in the consumer, not in the request.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("task_queue")]

SEED = override_settings(SUPPORT_CLIENT_LOGGING="seed")
PAIR = {"user_message": "Where is my booking?", "assistant_message": "Under My bookings.", "input_tokens": 45}


def _pair_url(conversation: Conversation) -> str:
    return f"/api/support/conversations/{conversation.pk}/messages"


def _logged(client: Any, conversation: Conversation, **headers: str) -> list[str]:
    with round_trips() as trips:
        response = client.post(_pair_url(conversation), {**PAIR, "output_tokens": 105}, format="json", **headers)
    assert response.status_code == 201, response.content
    # At most one transaction, and no savepoints (each is a statement of its own, counted above).
    assert trips.transactions in ([], ["BEGIN IMMEDIATE", "COMMIT"]), trips.transactions
    return trips


def _warm(client: Any, conversation: Conversation) -> None:
    # The conversation's first pair also records its question and moves its outcome; the steady state is next.
    # With a key, so the connection has asked the server once whether it has transactions (MongoDB's hello).
    response = client.post(
        _pair_url(conversation), {**PAIR, "output_tokens": 105}, format="json", HTTP_IDEMPOTENCY_KEY="warm"
    )
    assert response.status_code == 201, response.content


@SEED
def test_a_widget_pair_without_a_key_takes_at_most_four_round_trips(
    make_conversation: Callable[..., Any], widget: Callable[[str], Any]
) -> None:
    conversation, token = make_conversation()
    client = widget(token)
    _warm(client, conversation)
    trips = _logged(client, conversation)
    assert len(trips) <= 4, "\n".join(t[:150] for t in trips)
    assert Message.objects.filter(conversation=conversation).count() == 4


@SEED
def test_a_widget_pair_with_a_key_takes_at_most_six_round_trips(
    make_conversation: Callable[..., Any], widget: Callable[[str], Any]
) -> None:
    conversation, token = make_conversation()
    client = widget(token)
    _warm(client, conversation)
    trips = _logged(client, conversation, HTTP_IDEMPOTENCY_KEY="pair-2")
    assert len(trips) <= 6, trips
    replay = _logged(client, conversation, HTTP_IDEMPOTENCY_KEY="pair-2")
    assert len(replay) <= 4, replay
    assert Message.objects.filter(conversation=conversation).count() == 4


def test_a_staff_pair_adds_only_its_sign_in_reads(make_conversation: Callable[..., Any], staff: Any) -> None:
    # The API token (with its user) and the staff member's business scope; then the widget's own trips.
    conversation, _token = make_conversation()
    _warm(staff, conversation)
    assert len(_logged(staff, conversation)) <= 4 + 2
    assert len(_logged(staff, conversation, HTTP_IDEMPOTENCY_KEY="staff-1")) <= 6 + 2


@SEED
def test_the_round_trips_do_not_grow_with_the_conversation(
    make_conversation: Callable[..., Any], widget: Callable[[str], Any]
) -> None:
    conversation, token = make_conversation()
    client = widget(token)
    _warm(client, conversation)
    short = _logged(client, conversation)
    Message.objects.bulk_create(
        Message(conversation=conversation, role="user" if i % 2 == 0 else "assistant", content=f"turn {i}")
        for i in range(200)
    )
    assert len(_logged(client, conversation)) == len(short)
