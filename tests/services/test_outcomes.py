"""Outcomes kept by the services: every transition and turn recomputes them, the periodic job settles them,
and the rollups carry them (with the cost) exactly as a rebuild does."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from support import services, tasks
from support.models import Conversation, DailyConversationRollup, EscalationReason, Outcome, Status
from tests.fakes.desk import turn_pair
from tests.services.test_rollups import snapshot

pytestmark = pytest.mark.django_db


def outcome_of(conversation: Conversation) -> str:
    return Conversation.objects.values_list("outcome", flat=True).get(pk=conversation.pk)


def window_passes(conversation: Conversation) -> None:
    """Move the conversation's latest turn back past the resolution window (25 h with the default 24)."""
    Conversation.objects.filter(pk=conversation.pk).update(last_turn_at=timezone.now() - timedelta(hours=25))


def rollup_outcomes() -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in DailyConversationRollup.objects.all():
        totals[row.outcome] = totals.get(row.outcome, 0) + row.conversations
    return {name: n for name, n in totals.items() if n}


def test_a_new_conversation_is_abandoned_until_a_substantive_question_opens_it() -> None:
    conversation, _ = services.conversation_create()
    assert outcome_of(conversation) == Outcome.ABANDONED
    services.message_log(conversation=conversation, turns=turn_pair("hello", "Hi! How can I help?"))
    assert outcome_of(conversation) == Outcome.ABANDONED
    services.message_log(conversation=conversation, turns=turn_pair("How much is it?", "From £0 a month."))
    assert outcome_of(conversation) == Outcome.OPEN
    assert rollup_outcomes() == {Outcome.OPEN: 1}


def test_the_periodic_job_settles_an_answered_conversation_as_assumed_and_a_greeting_stays_abandoned() -> None:
    answered, _ = services.conversation_create()
    services.message_log(conversation=answered, turns=turn_pair("How much is it?", "From £0 a month."))
    unanswered, _ = services.conversation_create()
    services.message_log(
        conversation=unanswered, turns=[services.Turn(role="user", content="Where is my booking?", priced=False)]
    )
    recent, _ = services.conversation_create()
    services.message_log(conversation=recent, turns=turn_pair("Do you take deposits?", "Yes, up to 50%."))
    window_passes(answered)
    window_passes(unanswered)

    assert tasks.outcomes_settle.call_local() == 2

    assert outcome_of(answered) == Outcome.ASSUMED
    assert outcome_of(unanswered) == Outcome.ABANDONED
    assert outcome_of(recent) == Outcome.OPEN
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live
    assert rollup_outcomes() == {Outcome.ASSUMED: 1, Outcome.ABANDONED: 1, Outcome.OPEN: 1}


def test_a_customer_returning_reverts_an_assumed_resolution() -> None:
    conversation, _ = services.conversation_create()
    services.message_log(conversation=conversation, turns=turn_pair("How much is it?", "From £0 a month."))
    window_passes(conversation)
    services.conversations_outcome_settle()
    assert outcome_of(conversation) == Outcome.ASSUMED
    conversation.refresh_from_db()
    services.message_log(conversation=conversation, turns=turn_pair("It did not work", "Try Settings > Plan."))
    assert outcome_of(conversation) == Outcome.OPEN
    assert rollup_outcomes() == {Outcome.OPEN: 1}


def test_ratings_and_escalations_set_confirmed_negative_and_escalated(staff_user: Any) -> None:
    liked, _ = services.conversation_create()
    services.message_log(conversation=liked, turns=turn_pair("How much is it?", "From £0 a month."))
    services.conversation_rate(conversation=liked, rating="up")
    assert outcome_of(liked) == Outcome.CONFIRMED

    disliked, _ = services.conversation_create()
    services.message_log(conversation=disliked, turns=turn_pair("How much is it?", "From £0 a month."))
    services.conversation_rate(conversation=disliked, rating="down")
    assert outcome_of(disliked) == Outcome.NEGATIVE
    services.conversation_rate(conversation=disliked, rating="up")  # changed their mind
    assert outcome_of(disliked) == Outcome.CONFIRMED

    handed, _ = services.conversation_create()
    services.message_log(
        conversation=handed,
        turns=turn_pair("I want a person", "Passing you on."),
        is_escalation=True,
        escalation_reason=EscalationReason.HUMAN_REQUESTED,
    )
    assert outcome_of(handed) == Outcome.ESCALATED
    # Staff clear the flag: the conversation is judged on its turns again.
    services.conversation_update(conversation=handed, actor=staff_user, changes={"escalated": False})
    services.conversation_update(conversation=handed, actor=staff_user, changes={"status": Status.CLOSED})
    assert outcome_of(handed) == Outcome.OPEN
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live


def test_the_state_rows_carry_each_conversations_cost_to_its_outcome() -> None:
    confirmed, _ = services.conversation_create()
    services.message_log(conversation=confirmed, turns=turn_pair("How much is it?", "From £0 a month.", tokens=500))
    services.conversation_rate(conversation=confirmed, rating="up")
    services.message_log(conversation=confirmed, turns=turn_pair("And for teams?", "£10 a seat.", tokens=700))
    abandoned, _ = services.conversation_create()
    services.message_log(conversation=abandoned, turns=turn_pair("hi", "Hello!", tokens=300))
    cost = {
        row["outcome"]: row["cost"]
        for row in DailyConversationRollup.objects.values("outcome").annotate(cost=Sum("cost_micros"))
        if row["cost"]
    }
    confirmed.refresh_from_db()
    abandoned.refresh_from_db()
    assert confirmed.cost_micros > 0 and abandoned.cost_micros > 0
    assert cost == {Outcome.CONFIRMED: confirmed.cost_micros, Outcome.ABANDONED: abandoned.cost_micros}


@pytest.mark.django_db(transaction=True)
def test_concurrent_turns_and_ratings_leave_the_rollups_equal_to_a_rebuild() -> None:
    conversations = [services.conversation_create()[0] for _ in range(3)]
    errors: list[BaseException] = []

    def chat(conversation_id: Any, index: int) -> None:
        try:
            conversation = Conversation.objects.get(pk=conversation_id)
            for turn in range(4):
                services.message_log(
                    conversation=conversation, turns=turn_pair(f"Question {index} {turn} here", "An answer for you.")
                )
                if turn == 2:
                    services.conversation_rate(conversation=conversation, rating="up" if index % 2 else "down")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=chat, args=(conversation.pk, index))
        for index, conversation in enumerate(conversations * 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Every row: the usage rows' per-model conversation count is the fold's, one fold at a time, so two
    # first turns at once no longer both count the conversation (it did on MongoDB before issue 13).
    services.rollups_fold()
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live
    assert sum(row.cost_micros for row in DailyConversationRollup.objects.all()) == sum(
        c.cost_micros for c in Conversation.objects.all()
    )
