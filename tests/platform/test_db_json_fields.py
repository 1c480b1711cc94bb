"""JSON columns read back as they were written, on both databases. On MongoDB a JSON value is stored as a
document, so support.db.shapes hands it over as read: django-mongodb-backend turned each one into text for
JSONField to parse again (a ticket page's 500 turns: two dumps and two loads a turn)."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest

from support.models import Conversation, Message

pytestmark = pytest.mark.django_db

VALUES: list[Any] = [["model:claude-haiku-4-5", "client"], {"day": "2026-11-30", "n": 3}, "123", "null", 7, []]


@pytest.mark.parametrize("value", VALUES)
def test_a_json_column_reads_back_what_was_written(make_conversation: Any, value: Any) -> None:
    conversation, _ = make_conversation()
    Conversation.objects.filter(pk=conversation.pk).update(rollup_marks=value)
    assert Conversation.objects.get(pk=conversation.pk).rollup_marks == value
    assert Conversation.objects.filter(pk=conversation.pk).values_list("rollup_marks", flat=True).get() == value


def test_a_page_of_turns_is_read_without_writing_its_json_out_as_text(make_conversation: Any, on_mongodb: bool) -> None:
    if not on_mongodb:
        pytest.skip("SQLite stores JSON as text: reading it is parsing it")
    conversation, _ = make_conversation()
    Message.objects.bulk_create(
        Message(conversation=conversation, role="assistant", content=f"Turn {i}.", cited_article_ids=[i, i + 1])
        for i in range(20)
    )
    with mock.patch("json.dumps", wraps=json.dumps) as dumps, mock.patch("json.loads", wraps=json.loads) as loads:
        turns = list(Message.objects.filter(conversation=conversation).order_by("created_at", "pk"))
    assert [turn.cited_article_ids for turn in turns] == [[i, i + 1] for i in range(20)]
    assert (dumps.call_count, loads.call_count) == (0, 0)
