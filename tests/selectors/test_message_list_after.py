"""selectors.message_list_after: the turns after a given one in (created_at, pk) order, where turns stored
together share created_at, cut at the limit wherever the cut falls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from support import selectors
from support.models import Message, Role

pytestmark = pytest.mark.django_db


def test_it_returns_the_turns_after_any_turn_in_order_across_shared_timestamps(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    start = timezone.now().replace(microsecond=0)
    moments = [0, 0, 0, 5, 5, 9]  # three turns stored together, a pair, one alone
    stored = Message.objects.bulk_create(
        [Message(conversation=conversation, role=Role.USER, content=f"turn {i}") for i in range(len(moments))]
    )
    for message, seconds in zip(stored, moments, strict=True):
        Message.objects.filter(pk=message.pk).update(created_at=start + timedelta(seconds=seconds))
    ordered = list(Message.objects.filter(conversation=conversation).order_by("created_at", "pk"))

    assert [m.pk for m in selectors.message_list_after(conversation=conversation, after=None, limit=4)] == [
        m.pk for m in ordered[:4]
    ]
    for position, after in enumerate(ordered):
        for limit in (1, 2, 100):
            found = selectors.message_list_after(conversation=conversation, after=after, limit=limit)
            expected = ordered[position + 1 : position + 1 + limit]
            assert [m.pk for m in found] == [m.pk for m in expected], (position, limit)
