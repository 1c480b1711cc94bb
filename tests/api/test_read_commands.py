"""Issue 13: GET analytics and GET tickets send a fixed number of database commands, each one an index can
serve without a join (no SQL JOIN, no $lookup, no $unionWith), whatever the window or the page size."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from support import services
from support.models import Conversation, Message, Role, Status
from tests.fakes.commands import Commands, database_commands

pytestmark = pytest.mark.django_db

BASE = "/api/support"
#: The joins a hot read must not make: each grows with the rows it joins.
JOINS = (" JOIN ", "$lookup", "$unionWith")


def _client(user: Any) -> APIClient:
    # Authenticated without a token, so the only commands counted are the endpoint's own.
    client = APIClient()
    client.force_authenticate(user)
    return client


def _get(client: APIClient, url: str) -> tuple[Commands, Any]:
    client.get(url)  # the first request of a kind may read what later ones find cached
    with database_commands() as commands:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return commands, response.json()


def _joins(commands: Commands) -> list[str]:
    return [text[:300] for needle in JOINS for text in commands.containing(needle)]


def _seed_days(days: int, *, per_day: int) -> None:
    """Conversations started on each of the last `days` days (two questions, two models), their rollups rebuilt."""
    now = timezone.now()
    made = Conversation.objects.bulk_create(
        Conversation(
            source="web",
            status=Status.NEEDS_REVIEW if i % 3 == 0 else Status.AUTO_RESOLVED,
            escalated=i % 3 == 0,
            escalation_reason="widget_flag" if i % 3 == 0 else "",
            escalated_at=now - timedelta(days=day) if i % 3 == 0 else None,
            question_key=f"question {i % 2}",
            business_id=f"b{i % 2}",
            message_count=2,
            cost_micros=100,
            token_hash="0" * 64,
            created_at=now - timedelta(days=day, minutes=i),
        )
        for day in range(days)
        for i in range(per_day)
    )
    Message.objects.bulk_create(
        Message(
            conversation_id=conversation.pk,
            role=role,
            content="hi",
            model="" if role == Role.USER else ("claude-haiku-4-5" if n % 2 else "claude-sonnet-4-5"),
            cost_micros=0 if role == Role.USER else 100,
            created_at=conversation.created_at + timedelta(seconds=step),
        )
        for n, conversation in enumerate(made)
        for step, role in enumerate((Role.USER, Role.ASSISTANT))
    )
    services.rollups_rebuild()


def test_it_reads_analytics_in_the_same_few_commands_for_10_and_100_days_without_joins(staff_user: Any) -> None:
    _seed_days(100, per_day=2)
    client = _client(staff_user)

    short, short_body = _get(client, f"{BASE}/analytics?days=10")
    long, long_body = _get(client, f"{BASE}/analytics?days=100")

    assert (short_body["total_conversations"], long_body["total_conversations"]) == (20, 200)
    assert len(short.queries) == len(long.queries), (short.queries, long.queries)
    # One read per rollup table (conversations, usage, questions grouped, closes, grounding) and one of the
    # window's escalations (first response); before: 14, one per figure and a per-day UNION of questions.
    assert len(long.queries) <= 6, long.queries
    assert _joins(long) == []


def test_it_sums_the_top_questions_of_a_long_window_in_one_grouped_query(staff_user: Any) -> None:
    _seed_days(100, per_day=2)
    with database_commands() as commands:
        response = _client(staff_user).get(f"{BASE}/analytics?days=100")
    assert response.json()["top_questions"] == [
        {"question": "question 0", "count": 100},
        {"question": "question 1", "count": 100},
    ]
    question_reads = [text for text in commands.queries if "rollup_questions" in text]
    assert len(question_reads) == 1, question_reads


def _tickets(count: int, *, assignee: Any) -> None:
    """`count` tickets of 10 turns each, assigned to `assignee`, who answered each once."""
    now = timezone.now()
    made = Conversation.objects.bulk_create(
        Conversation(
            source="web",
            status=Status.NEEDS_REVIEW,
            escalated=True,
            assigned_to=assignee,
            message_count=10,
            token_hash="0" * 64,
            created_at=now - timedelta(minutes=i),
        )
        for i in range(count)
    )
    Message.objects.bulk_create(
        Message(
            conversation_id=conversation.pk,
            role=Role.AGENT if step == 9 else (Role.USER if step % 2 == 0 else Role.ASSISTANT),
            author=assignee if step == 9 else None,
            content=f"turn {step}",
            created_at=conversation.created_at + timedelta(seconds=step),
        )
        for conversation in made
        for step in range(10)
    )


def test_it_reads_a_ticket_page_in_the_same_commands_for_10_and_50_tickets_without_joins(staff_user: Any) -> None:
    _tickets(50, assignee=staff_user)
    client = _client(staff_user)

    small, small_body = _get(client, f"{BASE}/tickets?page_size=10")
    large, large_body = _get(client, f"{BASE}/tickets?page_size=50")

    assert (len(small_body["results"]), len(large_body["results"])) == (10, 50)
    assert len(small.queries) == len(large.queries), (small.queries, large.queries)
    assert _joins(large) == []
    ticket = large_body["results"][0]
    assert ticket["assigned_to"]["username"] == staff_user.username
    assert [turn["content"] for turn in ticket["messages"]] == [f"turn {step}" for step in range(10)]
    assert ticket["messages"][-1]["author"]["username"] == staff_user.username
