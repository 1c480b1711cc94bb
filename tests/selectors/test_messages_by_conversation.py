"""selectors.messages.messages_by_conversation: a page's turns, grouped by conversation, oldest first with ties
in pk order, and their authors; ordered in the app, so the database only filters on the conversation index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from support.models import Message
from support.selectors.messages import messages_by_conversation

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _turn(conversation: Any, content: str, at: datetime, author: Any = None) -> Message:
    return Message.objects.create(
        conversation=conversation, role="agent" if author else "user", content=content, created_at=at, author=author
    )


def test_it_groups_each_conversations_turns_oldest_first_with_ties_in_pk_order(
    make_conversation: Any, staff_user: Any
) -> None:
    first, _ = make_conversation()
    second, _ = make_conversation()
    # Inserted out of order, and interleaved between the two conversations.
    late = _turn(first, "late", T0 + timedelta(minutes=5))
    _turn(second, "only", T0 + timedelta(minutes=1))
    tie_a = _turn(first, "tie a", T0 + timedelta(minutes=2), author=staff_user)
    tie_b = _turn(first, "tie b", T0 + timedelta(minutes=2))
    early = _turn(first, "early", T0)
    grouped = messages_by_conversation(conversation_ids=[first.pk, second.pk])
    assert [t.pk for t in grouped[first.pk]] == [early.pk, tie_a.pk, tie_b.pk, late.pk]
    assert [t.content for t in grouped[second.pk]] == ["only"]
    assert grouped[first.pk][1].author == staff_user


def test_it_gives_a_conversation_without_turns_an_empty_list(make_conversation: Any) -> None:
    empty, _ = make_conversation()
    assert messages_by_conversation(conversation_ids=[empty.pk]) == {empty.pk: []}


def test_it_leaves_the_ordering_out_of_the_query(make_conversation: Any, on_mongodb: bool) -> None:
    conversation, _ = make_conversation()
    _turn(conversation, "hello", T0)
    with CaptureQueriesContext(connection) as queries:
        messages_by_conversation(conversation_ids=[conversation.pk])
    (read,) = [q["sql"] for q in queries.captured_queries if "support_messages" in q["sql"]]
    assert ("'$sort'" if on_mongodb else "ORDER BY") not in read
