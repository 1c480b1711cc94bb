"""support.api.serializers.represent / validated: one serializer instance per class serves every request,
so it must answer exactly what a fresh serializer would, for any object, from any number of threads."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rest_framework.exceptions import ValidationError

from support import services
from support.api.messages import MessageCreateInputSerializer
from support.api.serializers import ConversationOutputSerializer, represent, validated

pytestmark = pytest.mark.django_db


def test_it_renders_what_a_fresh_serializer_renders(make_conversation: Any) -> None:
    conversation, _token = make_conversation()
    services.conversation_escalate(conversation=conversation, reason="human_requested", actor_label="widget")
    conversation.refresh_from_db()
    assert represent(ConversationOutputSerializer, conversation) == ConversationOutputSerializer(conversation).data


def test_it_names_the_field_of_bad_input_as_a_fresh_serializer_does() -> None:
    bad = {"user_message": "hi", "input_tokens": -1}
    fresh = MessageCreateInputSerializer(data=bad, context={"client": True})
    assert not fresh.is_valid()
    with pytest.raises(ValidationError) as raised:
        validated(MessageCreateInputSerializer, bad, client=True)
    assert raised.value.detail == fresh.errors
    assert set(fresh.errors) == {"input_tokens"}


def test_the_widget_and_staff_keep_their_own_limits() -> None:
    # The widget's figures are held to what one call of the model could use; staff back-fill freely.
    huge = {"user_message": "q", "assistant_message": "a", "input_tokens": 9_000_000}
    assert validated(MessageCreateInputSerializer, huge, client=False)["input_tokens"] == 9_000_000
    with pytest.raises(ValidationError):
        validated(MessageCreateInputSerializer, huge, client=True)
    assert validated(MessageCreateInputSerializer, huge, client=False)["input_tokens"] == 9_000_000


def test_threads_sharing_the_instance_each_get_their_own_answer() -> None:
    wrong: list[str] = []

    def work(n: int) -> None:
        for i in range(200):
            tokens = n * 1000 + i
            body = {"user_message": f"q{tokens}", "assistant_message": "a", "output_tokens": tokens}
            values = validated(MessageCreateInputSerializer, body)
            if (values["user_message"], values["output_tokens"]) != (f"q{tokens}", tokens):
                wrong.append(f"{n}/{i}: {values}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
