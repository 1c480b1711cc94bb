"""support.api.serializers.OutputSerializer: its to_representation reads simple fields with getattr instead of
DRF's generic walk; what it renders must be exactly what DRF's own Serializer.to_representation renders."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from rest_framework import serializers

from support import selectors, services
from support.api.serializers import (
    ConversationWithMessagesOutputSerializer,
    OutputSerializer,
    WidgetConversationOutputSerializer,
    WidgetMessageOutputSerializer,
)
from support.models import Conversation, Message

pytestmark = pytest.mark.django_db


def _drf(serializer: serializers.Serializer, instance: Any) -> Any:
    return serializers.Serializer.to_representation(serializer, instance)


def _ticket(make_conversation: Any, staff_user: Any) -> Conversation:
    conversation, _ = make_conversation(source="web", business_id="venue-1")
    Message.objects.create(conversation=conversation, role="user", content="Can I bring my dog?")
    Message.objects.create(
        conversation=conversation, role="assistant", content="Yes, on the terrace.", model="claude-haiku-4-5",
        input_tokens=45, output_tokens=105, cost_micros=570,
    )  # fmt: skip
    services.conversation_escalate(conversation=conversation, reason="human_requested", actor_label="widget")
    Message.objects.create(conversation=conversation, role="agent", content="Welcome!", author=staff_user)
    page = [Conversation.objects.get(pk=conversation.pk)]
    selectors.conversation_assignees_attach(page)
    selectors.conversation_messages_attach(page)
    return page[0]


def test_it_renders_a_ticket_with_its_messages_as_drf_does(make_conversation: Any, staff_user: Any) -> None:
    ticket = _ticket(make_conversation, staff_user)
    serializer = ConversationWithMessagesOutputSerializer()
    rendered = serializer.to_representation(ticket)
    assert rendered == _drf(serializer, ticket)
    assert [m["author"] for m in rendered["messages"]] == [None, None, {"id": str(staff_user.pk), "username": "agent"}]
    assert rendered["closed_at"] is None and rendered["overdue"] is False
    assert list(rendered) == list(serializer.fields)


def test_it_renders_the_widgets_view_as_drf_does(make_conversation: Any, staff_user: Any) -> None:
    ticket = _ticket(make_conversation, staff_user)
    conversation_view, message_view = WidgetConversationOutputSerializer(), WidgetMessageOutputSerializer()
    assert conversation_view.to_representation(ticket) == _drf(conversation_view, ticket)
    for message in ticket.loaded_messages:
        assert message_view.to_representation(message) == _drf(message_view, message)


class _Odd(OutputSerializer):
    title = serializers.CharField()
    count = serializers.IntegerField(default=7)
    shout = serializers.CharField(source="loud")
    nested = serializers.CharField(source="owner.name", allow_null=True)
    gone = serializers.CharField(required=False)


def test_it_leaves_callables_defaults_paths_and_mappings_to_drf() -> None:
    odd = _Odd()
    instance = SimpleNamespace(title=12, loud=lambda: "HELLO", owner=SimpleNamespace(name=None))
    assert (
        odd.to_representation(instance)
        == _drf(odd, instance)
        == {
            "title": "12",
            "count": 7,
            "shout": "HELLO",
            "nested": None,
        }
    )
    mapping = {"title": "t", "loud": "x", "owner": {"name": "n"}, "gone": "g"}
    assert odd.to_representation(mapping) == _drf(odd, mapping)
