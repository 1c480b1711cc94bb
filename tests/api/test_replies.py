"""POST conversations/{id}/replies and PATCH handled_by: staff answering the customer from the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from support.models import Conversation, EventField, HandledBy, Message, MessageOrigin, Role, Status, TicketEvent

BASE = "/api/support"


def _url(conversation: Conversation) -> str:
    return f"{BASE}/conversations/{conversation.pk}/replies"


@pytest.mark.django_db
def test_staff_reply_is_201_with_the_message_and_the_conversation(
    staff: APIClient, staff_user: Any, make_conversation: Any
) -> None:
    conversation, _ = make_conversation()

    response = staff.post(_url(conversation), {"content": "Hi, **Sam** here."}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    message = Message.objects.get(conversation=conversation)
    assert body["message"]["id"] == str(message.pk)
    assert (body["message"]["role"], body["message"]["content"]) == ("agent", "Hi, **Sam** here.")
    assert body["message"]["author"] == {"id": str(staff_user.pk), "username": "agent"}
    assert (body["message"]["cost_micros"], body["message"]["model"], body["message"]["input_tokens"]) == (0, "", 0)
    assert body["conversation"]["id"] == str(conversation.pk)
    assert body["conversation"]["handled_by"] == "human"
    assert body["conversation"]["assigned_to"] == {"id": str(staff_user.pk), "username": "agent"}
    assert body["conversation"]["message_count"] == 1
    assert (message.origin, message.author_id) == (MessageOrigin.AGENT, staff_user.pk)


@pytest.mark.django_db
def test_a_reply_with_hand_back_leaves_the_bot_answering(staff: APIClient, make_conversation: Any) -> None:
    conversation, _ = make_conversation()

    response = staff.post(_url(conversation), {"content": "Done here.", "hand_back": True}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["conversation"]["handled_by"] == "bot"


@pytest.mark.django_db
def test_a_reply_to_a_closed_conversation_reopens_it(staff: APIClient, staff_user: Any, make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    staff.patch(f"{BASE}/conversations/{conversation.pk}", {"status": "closed"}, format="json")

    response = staff.post(_url(conversation), {"content": "Reopening: one more thing."}, format="json")

    assert response.status_code == 201
    assert response.json()["conversation"]["status"] == Status.IN_PROGRESS
    assert response.json()["conversation"]["closed_at"] is None
    last = TicketEvent.objects.filter(conversation=conversation, field=EventField.STATUS).order_by("-created_at", "-pk")
    assert (last[0].old_value, last[0].new_value, last[0].actor_id) == ("closed", "in_progress", staff_user.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("content", ["", "   ", None])
def test_an_empty_reply_is_400_naming_content_and_stores_nothing(
    staff: APIClient, make_conversation: Any, content: Any
) -> None:
    conversation, _ = make_conversation()
    body = {} if content is None else {"content": content}

    response = staff.post(_url(conversation), body, format="json")

    assert response.status_code == 400
    assert "content" in response.json()["errors"]
    assert not Message.objects.filter(conversation=conversation).exists()
    conversation.refresh_from_db()
    assert conversation.handled_by == HandledBy.BOT


@pytest.mark.django_db
@override_settings(SUPPORT_MAX_MESSAGE_CHARS=50)
def test_a_reply_over_the_length_limit_is_400_naming_content(staff: APIClient, make_conversation: Any) -> None:
    conversation, _ = make_conversation()

    response = staff.post(_url(conversation), {"content": "x" * 51}, format="json")

    assert response.status_code == 400
    assert "content" in response.json()["errors"]
    assert staff.post(_url(conversation), {"content": "x" * 50}, format="json").status_code == 201


@pytest.mark.django_db
def test_a_non_staff_user_is_403_and_the_widget_token_is_not_enough(
    customer_user: Any, make_conversation: Any, widget: Any, anon: APIClient
) -> None:
    conversation, token = make_conversation()
    customer = APIClient()
    customer.force_authenticate(customer_user)

    assert customer.post(_url(conversation), {"content": "hi"}, format="json").status_code == 403
    assert widget(token).post(_url(conversation), {"content": "hi"}, format="json").status_code in (401, 403)
    assert anon.post(_url(conversation), {"content": "hi"}, format="json").status_code in (401, 403)
    assert not Message.objects.filter(conversation=conversation).exists()


@pytest.mark.django_db
def test_a_reply_to_an_unknown_conversation_is_404(staff: APIClient, make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    url = _url(conversation).replace(str(conversation.pk), str(conversation.pk) + "0")

    assert staff.post(url, {"content": "hi"}, format="json").status_code == 404


@pytest.mark.django_db
def test_patch_handled_by_takes_over_and_hands_back_with_events(
    staff: APIClient, staff_user: Any, make_conversation: Any
) -> None:
    conversation, _ = make_conversation()
    url = f"{BASE}/conversations/{conversation.pk}"

    taken = staff.patch(url, {"handled_by": "human"}, format="json")
    back = staff.patch(url, {"handled_by": "bot"}, format="json")
    wrong = staff.patch(url, {"handled_by": "robot"}, format="json")

    assert (taken.status_code, taken.json()["handled_by"]) == (200, "human")
    assert (back.status_code, back.json()["handled_by"]) == (200, "bot")
    assert wrong.status_code == 400 and "handled_by" in wrong.json()["errors"]
    events = TicketEvent.objects.filter(conversation=conversation, field=EventField.HANDLED_BY).order_by("created_at")
    assert [(e.old_value, e.new_value, e.actor_id) for e in events] == [
        ("bot", "human", staff_user.pk),
        ("human", "bot", staff_user.pk),
    ]


@pytest.mark.django_db
def test_the_widget_cannot_take_over(make_conversation: Any, widget: Any) -> None:
    conversation, token = make_conversation()

    response = widget(token).patch(f"{BASE}/conversations/{conversation.pk}", {"handled_by": "human"}, format="json")

    assert response.status_code in (401, 403)
    conversation.refresh_from_db()
    assert conversation.handled_by == HandledBy.BOT


@pytest.mark.django_db
def test_the_widget_sees_who_answers_and_staff_see_the_reply_author(
    staff: APIClient, make_conversation: Any, widget: Any
) -> None:
    conversation, token = make_conversation()
    staff.post(_url(conversation), {"content": "Hello"}, format="json")

    mine = widget(token).get(f"{BASE}/conversations/{conversation.pk}").json()
    theirs = staff.get(f"{BASE}/conversations/{conversation.pk}").json()

    assert mine["handled_by"] == "human"
    assert "assigned_to" not in mine and "author" not in mine["messages"][0]
    assert theirs["messages"][0]["role"] == Role.AGENT and theirs["messages"][0]["author"]["username"] == "agent"
