"""GET conversations/{id}/messages?after=: the widget's and the ticket page's poll, cheap when nothing changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from support import selectors, services
from support.models import Conversation, MessageOrigin, Role

BASE = "/api/support"


def _url(conversation: Conversation, after: Any = None) -> str:
    url = f"{BASE}/conversations/{conversation.pk}/messages"
    return url if after is None else f"{url}?after={after}"


def _customer(conversation: Conversation, text: str) -> Any:
    [message] = services.message_log(
        conversation=conversation,
        turns=[services.Turn(role=Role.USER, content=text, priced=False, origin=MessageOrigin.PROXY)],
    )
    return message


@pytest.mark.django_db
def test_the_widget_gets_the_turns_after_its_last_one_with_the_agent_by_first_name(
    make_conversation: Any, widget: Any, staff_user: Any
) -> None:
    conversation, token = make_conversation()
    staff_user.first_name = "Sam"
    staff_user.save()
    first = _customer(conversation, "Can a person help?")
    reply = services.conversation_reply(conversation=conversation, author=staff_user, content="Sam here.")

    response = widget(token).get(_url(conversation, after=first.pk))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "messages": [
            {
                "id": str(reply.pk),
                "role": "agent",
                "content": "Sam here.",
                "created_at": response.json()["messages"][0]["created_at"],
                "author": {"name": "Sam", "initial": "S"},
            }
        ],
        "handled_by": "human",
        "status": "in_progress",
        "agent": {"name": "Sam", "initial": "S"},
    }
    assert response["ETag"]
    assert "agent@example.com" not in response.content.decode()
    everything = widget(token).get(_url(conversation)).json()["messages"]
    assert [m["role"] for m in everything] == ["user", "agent"] and everything[0]["author"] is None


@pytest.mark.django_db
def test_an_agent_without_a_first_name_is_shown_by_initial_never_by_email_or_username(
    make_conversation: Any, widget: Any, django_user_model: Any
) -> None:
    conversation, token = make_conversation()
    user = django_user_model.objects.create_user(username="zoe@example.com", email="zoe@example.com", is_staff=True)
    services.conversation_reply(conversation=conversation, author=user, content="Hi")

    body = widget(token).get(_url(conversation)).json()

    assert body["agent"] == {"name": "Z", "initial": "Z"}
    assert "zoe" not in str(body)


@pytest.mark.django_db
def test_an_unchanged_poll_is_a_304_and_a_new_turn_changes_the_etag(make_conversation: Any, widget: Any) -> None:
    conversation, token = make_conversation()
    first = _customer(conversation, "Hello")
    client = widget(token)
    tag = client.get(_url(conversation, after=first.pk))["ETag"]

    with CaptureQueriesContext(connection) as queries:
        unchanged = client.get(_url(conversation, after=first.pk), HTTP_IF_NONE_MATCH=tag)
    second = _customer(conversation, "Anyone?")
    changed = client.get(_url(conversation, after=first.pk), HTTP_IF_NONE_MATCH=tag)

    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged["ETag"] == tag
    assert len(queries) <= 3  # the conversation, its newest turn's id, and no more than one other
    assert changed.status_code == 200
    assert [m["id"] for m in changed.json()["messages"]] == [str(second.pk)]
    assert changed["ETag"] != tag


@pytest.mark.django_db
def test_an_unchanged_poll_is_a_304_from_the_cache_without_a_database_query(
    make_conversation: Any, widget: Any
) -> None:
    conversation, token = make_conversation()
    first = _customer(conversation, "Hello")
    client = widget(token)
    tag = client.get(_url(conversation, after=first.pk))["ETag"]

    with CaptureQueriesContext(connection) as queries:
        unchanged = client.get(_url(conversation, after=first.pk), HTTP_IF_NONE_MATCH=tag)

    assert unchanged.status_code == 304
    # The version, the token hash and the last-seen stamp come from one cache round trip.
    assert len(queries) == 0, [q["sql"] for q in queries]


@pytest.mark.django_db
def test_a_tag_given_for_one_after_does_not_answer_another(make_conversation: Any, widget: Any) -> None:
    conversation, token = make_conversation()
    first, second = _customer(conversation, "Hello"), _customer(conversation, "Anyone?")
    client = widget(token)
    tag = client.get(_url(conversation, after=second.pk))["ETag"]

    response = client.get(_url(conversation, after=first.pk), HTTP_IF_NONE_MATCH=tag)

    assert response.status_code == 200
    assert [m["id"] for m in response.json()["messages"]] == [str(second.pk)]


@pytest.mark.django_db
def test_a_take_over_changes_the_etag_even_without_a_new_turn(
    make_conversation: Any, widget: Any, staff_user: Any
) -> None:
    conversation, token = make_conversation()
    client = widget(token)
    tag = client.get(_url(conversation))["ETag"]

    services.conversation_handoff(conversation=conversation, handled_by="human", actor=staff_user)
    response = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag)

    assert response.status_code == 200
    assert response.json()["handled_by"] == "human"
    assert response.json()["agent"] is None  # taken over but unassigned, and nobody has replied yet


@pytest.mark.django_db
def test_staff_poll_the_same_shape_and_do_not_count_as_the_customer(make_conversation: Any, staff: APIClient) -> None:
    conversation, _ = make_conversation()
    _customer(conversation, "Hello")

    response = staff.get(_url(conversation))

    assert response.status_code == 200
    assert set(response.json()) == {"messages", "handled_by", "status", "agent"}
    conversation.refresh_from_db()
    assert selectors.conversation_last_seen(conversation=conversation) is None


@pytest.mark.django_db
def test_the_widget_poll_stamps_the_customer_as_seen_in_the_cache_and_the_flush_stores_it(
    make_conversation: Any, widget: Any
) -> None:
    conversation, token = make_conversation()
    client = widget(token)

    tag = client.get(_url(conversation))["ETag"]
    assert client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag).status_code == 304
    conversation.refresh_from_db()
    cached = selectors.conversation_last_seen(conversation=conversation)

    assert conversation.customer_last_seen_at is None  # no database write per poll
    assert cached is not None and abs(cached - timezone.now()) < timedelta(seconds=5)
    assert services.conversation_seen_flush() == 1
    conversation.refresh_from_db()
    assert conversation.customer_last_seen_at == cached
    assert services.conversation_seen_flush() == 0  # flushed once; nothing polled since


@pytest.mark.django_db
def test_a_poll_without_the_token_is_404_and_a_bad_after_is_400(
    make_conversation: Any, widget: Any, anon: APIClient
) -> None:
    conversation, token = make_conversation()
    other, _ = make_conversation()
    elsewhere = _customer(other, "Not yours")

    assert anon.get(_url(conversation)).status_code == 404
    assert widget("wrong").get(_url(conversation)).status_code == 404
    bad = widget(token).get(_url(conversation, after="not-an-id"))
    assert bad.status_code == 400 and "after" in bad.json()["errors"]
    assert widget(token).get(_url(conversation, after=elsewhere.pk)).status_code == 400
    conversation.refresh_from_db()
    assert selectors.conversation_last_seen(conversation=conversation) is None  # a refused poll is not the customer


@pytest.mark.django_db
def test_turns_stored_together_are_paged_in_order_without_losing_one(make_conversation: Any, widget: Any) -> None:
    conversation, token = make_conversation()
    turns = services.message_log(
        conversation=conversation,
        turns=[services.Turn(role=Role.USER, content=f"turn {i}", priced=False) for i in range(3)],
    )  # one timestamp for all three

    got = widget(token).get(_url(conversation, after=turns[0].pk)).json()["messages"]

    assert [m["content"] for m in got] == ["turn 1", "turn 2"]
