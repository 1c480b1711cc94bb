"""services.conversation_reply / conversation_handoff / conversation_seen: a person answering in the conversation."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from support import selectors, services
from support.models import (
    Conversation,
    DailyUsageRollup,
    EventField,
    HandledBy,
    Message,
    MessageOrigin,
    Role,
    Status,
    TicketEvent,
)
from tests.services.test_rollups import snapshot


def _events(conversation: Conversation, field: str) -> list[tuple[str, str, str]]:
    return [
        (event.actor_label, event.old_value, event.new_value)
        for event in TicketEvent.objects.filter(conversation=conversation, field=field).order_by("created_at", "pk")
    ]


def _customer_turn(conversation: Conversation, text: str = "Where is my refund?") -> None:
    services.message_log(
        conversation=conversation,
        turns=[services.Turn(role=Role.USER, content=text, priced=False, origin=MessageOrigin.PROXY)],
    )


@pytest.mark.django_db
def test_a_reply_is_an_agent_turn_with_its_author_and_no_claude_usage(staff_user: Any) -> None:
    conversation, _ = services.conversation_create()
    _customer_turn(conversation)

    message = services.conversation_reply(conversation=conversation, author=staff_user, content="On its way.")

    stored = Message.objects.get(pk=message.pk)
    assert (stored.role, stored.origin, stored.author_id, stored.content) == (
        Role.AGENT,
        MessageOrigin.AGENT,
        staff_user.pk,
        "On its way.",
    )
    assert (stored.model, stored.price_id, stored.cost_micros) == ("", None, 0)
    assert (stored.input_tokens, stored.output_tokens, stored.cache_read_tokens, stored.cache_write_tokens) == (0,) * 4
    conversation.refresh_from_db()
    assert conversation.message_count == 2  # a turn of the conversation like any other
    assert conversation.cost_micros == 0 and conversation.total_output_tokens == 0


@pytest.mark.django_db
def test_a_reply_takes_over_and_assigns_an_unassigned_ticket_to_the_replier(staff_user: Any) -> None:
    conversation, _ = services.conversation_create()
    services.conversation_escalate(conversation=conversation, reason="no_answer")

    services.conversation_reply(conversation=conversation, author=staff_user, content="Hi, Sam here.")

    conversation.refresh_from_db()
    assert conversation.handled_by == HandledBy.HUMAN
    assert conversation.assigned_to_id == staff_user.pk
    assert conversation.status == Status.NEEDS_REVIEW  # already in the queue: left where staff put it
    assert _events(conversation, EventField.HANDLED_BY) == [("agent", "bot", "human")]
    assert _events(conversation, EventField.ASSIGNED_TO) == [("agent", "", "agent")]


@pytest.mark.django_db
def test_a_reply_leaves_a_ticket_assigned_to_someone_else_with_them(staff_user: Any, other_staff: Any) -> None:
    conversation, _ = services.conversation_create()
    services.conversation_update(conversation=conversation, actor=other_staff, changes={"assigned_to": other_staff})

    services.conversation_reply(conversation=conversation, author=staff_user, content="Covering for Lee.")

    conversation.refresh_from_db()
    assert conversation.assigned_to_id == other_staff.pk
    assert len(_events(conversation, EventField.ASSIGNED_TO)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.CLOSED, Status.AUTO_RESOLVED])
def test_a_reply_to_a_ticket_nobody_works_on_reopens_it_in_progress_with_an_event(status: str, staff_user: Any) -> None:
    conversation, _ = services.conversation_create()
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": status})
    live_before = snapshot()["state"]

    services.conversation_reply(conversation=conversation, author=staff_user, content="One more thing...")

    conversation.refresh_from_db()
    assert conversation.status == Status.IN_PROGRESS and conversation.closed_at is None
    assert _events(conversation, EventField.STATUS)[-1] == ("agent", status, Status.IN_PROGRESS)
    assert snapshot()["state"] != live_before  # the rollups moved with it
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live


@pytest.mark.django_db
def test_a_reply_with_hand_back_leaves_the_bot_answering(staff_user: Any) -> None:
    conversation, _ = services.conversation_create()
    services.conversation_handoff(conversation=conversation, handled_by=HandledBy.HUMAN, actor=staff_user)

    services.conversation_reply(conversation=conversation, author=staff_user, content="All done.", hand_back=True)

    conversation.refresh_from_db()
    assert conversation.handled_by == HandledBy.BOT
    assert _events(conversation, EventField.HANDLED_BY) == [("agent", "bot", "human"), ("agent", "human", "bot")]


@pytest.mark.django_db
def test_an_empty_reply_is_refused_and_changes_nothing(staff_user: Any) -> None:
    conversation, _ = services.conversation_create()

    with pytest.raises(ValueError):
        services.conversation_reply(conversation=conversation, author=staff_user, content="  \n ")

    conversation.refresh_from_db()
    assert conversation.handled_by == HandledBy.BOT and conversation.assigned_to_id is None
    assert not Message.objects.filter(conversation=conversation).exists()


@pytest.mark.django_db
def test_take_over_and_hand_back_write_one_event_each_and_repeating_one_writes_none(staff_user: Any) -> None:
    conversation, _ = services.conversation_create()

    services.conversation_handoff(conversation=conversation, handled_by=HandledBy.HUMAN, actor=staff_user)
    services.conversation_handoff(conversation=conversation, handled_by=HandledBy.HUMAN, actor=staff_user)
    services.conversation_handoff(conversation=conversation, handled_by=HandledBy.BOT, actor=staff_user)

    assert _events(conversation, EventField.HANDLED_BY) == [("agent", "bot", "human"), ("agent", "human", "bot")]
    with pytest.raises(ValueError):
        services.conversation_handoff(conversation=conversation, handled_by="robot", actor=staff_user)


@pytest.mark.django_db
def test_agent_turns_are_not_claude_usage_in_analytics_or_the_rollups(staff_user: Any) -> None:
    conversation, _ = services.conversation_create()
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content="Hi", priced=False, origin=MessageOrigin.PROXY),
            services.Turn(
                role=Role.ASSISTANT,
                content="Hello!",
                model="claude-sonnet-4-5",
                input_tokens=100,
                output_tokens=20,
                origin=MessageOrigin.PROXY,
            ),
        ],
    )
    before = selectors.analytics_summary(days=1)

    services.conversation_reply(conversation=conversation, author=staff_user, content="A person here.")

    after = selectors.analytics_summary(days=1)
    assert after["by_model"] == before["by_model"]  # no model row, tokens or cost for a person's words
    assert after["total_cost_micros"] == before["total_cost_micros"]
    # The turn counts among the conversation's messages, as message_count does (the drill-down agrees).
    assert after["total_messages"] == before["total_messages"] + 1
    assert not DailyUsageRollup.objects.exclude(model__in=["", "claude-sonnet-4-5"]).exists()
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live


@pytest.mark.django_db
def test_seen_is_written_at_most_once_per_interval(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    now = timezone.now()

    assert services.conversation_seen(conversation=conversation, at=now)
    assert not services.conversation_seen(conversation=conversation, at=now + timedelta(seconds=10))
    stale = Conversation.objects.get(pk=conversation.pk)  # another worker's copy, read before the write
    stale.customer_last_seen_at = None
    assert not services.conversation_seen(conversation=stale, at=now + timedelta(seconds=10))
    assert services.conversation_seen(conversation=conversation, at=now + timedelta(seconds=31))

    stored = Conversation.objects.get(pk=conversation.pk)
    assert stored.customer_last_seen_at is not None
    assert abs(stored.customer_last_seen_at - (now + timedelta(seconds=31))) < timedelta(milliseconds=1)  # MongoDB: ms
    assert stored.updated_at < now  # a stamp, not a change of the ticket


@pytest.mark.django_db(transaction=True)
def test_two_staff_replying_at_once_assign_the_ticket_once_and_both_replies_are_stored(
    staff_user: Any, other_staff: Any
) -> None:
    conversation, _ = services.conversation_create()
    services.conversation_escalate(conversation=conversation, reason="no_answer")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def reply(author: Any) -> None:
        try:
            copy = Conversation.objects.get(pk=conversation.pk)
            barrier.wait()
            services.conversation_reply(conversation=copy, author=author, content=f"From {author.username}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reply, args=(user,)) for user in (staff_user, other_staff)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    conversation.refresh_from_db()
    assigned = _events(conversation, EventField.ASSIGNED_TO)
    assert len(assigned) == 1 and assigned[0][1] == ""
    assert conversation.assigned_to.username == assigned[0][2]
    assert _events(conversation, EventField.HANDLED_BY) == [(assigned[0][0], "bot", "human")]
    replies = Message.objects.filter(conversation=conversation, role=Role.AGENT)
    assert sorted(m.content for m in replies) == ["From agent", "From lead"]
    assert conversation.message_count == 2


@pytest.mark.parametrize(
    ("reason", "handled_by"),
    [
        ("human_requested", HandledBy.HUMAN),
        ("bot_tool", HandledBy.HUMAN),
        ("widget_flag", HandledBy.HUMAN),
        ("support_email", HandledBy.HUMAN),
        ("no_answer", HandledBy.BOT),
        ("claude_unavailable", HandledBy.BOT),
        ("budget", HandledBy.BOT),
        ("thumbs_down", HandledBy.BOT),
    ],
)
@pytest.mark.django_db
def test_an_escalation_where_the_customer_waits_for_a_person_passes_the_conversation_to_people(
    reason: str, handled_by: str
) -> None:
    """Asking for a person stops the bot at once; a ticket only flagged for review keeps the bot answering."""
    conversation, _ = services.conversation_create()

    services.conversation_escalate(conversation=conversation, reason=reason)

    conversation.refresh_from_db()
    assert conversation.handled_by == handled_by
    expected = [("widget", "bot", "human")] if handled_by == HandledBy.HUMAN else []
    assert _events(conversation, EventField.HANDLED_BY) == expected
