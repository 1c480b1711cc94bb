"""support/outcomes.py: one table per rule, in the order the rules apply."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from support.models import EscalationReason, Outcome, Rating
from support.outcomes import OutcomeInputs, is_substantive, outcome_of

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)
LONG_AGO = NOW - timedelta(hours=25)
JUST_NOW = NOW - timedelta(hours=1)

#: A conversation the bot answered, with nothing else said: the baseline each row changes.
ANSWERED = OutcomeInputs(
    rating="",
    escalated=False,
    escalation_reason="",
    substantive_question=True,
    substantive_answer=True,
    last_turn_at=LONG_AGO,
)


def outcome(**changes: object) -> Outcome:
    return outcome_of(replace(ANSWERED, **changes), now=NOW, window=WINDOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"rating": Rating.DOWN},
        {"rating": Rating.DOWN, "escalated": True, "escalation_reason": EscalationReason.THUMBS_DOWN},
        {"rating": Rating.DOWN, "escalated": True, "escalation_reason": EscalationReason.BOT_TOOL},
        {"rating": Rating.DOWN, "last_turn_at": JUST_NOW},
        {"rating": Rating.DOWN, "substantive_question": False},
    ],
)
def test_rule_1_a_thumbs_down_is_negative_whatever_else_happened(changes: dict[str, object]) -> None:
    assert outcome(**changes) == Outcome.NEGATIVE


@pytest.mark.parametrize(
    "changes",
    [
        {"escalated": True, "escalation_reason": EscalationReason.BOT_TOOL},
        {"escalated": True, "escalation_reason": EscalationReason.NO_ANSWER, "rating": Rating.UP},
        {"escalated": True, "escalation_reason": EscalationReason.STAFF, "last_turn_at": JUST_NOW},
        {"escalated": True, "escalation_reason": EscalationReason.HUMAN_REQUESTED, "substantive_question": False},
    ],
)
def test_rule_2_an_escalated_conversation_is_escalated_even_when_rated_up(changes: dict[str, object]) -> None:
    assert outcome(**changes) == Outcome.ESCALATED


@pytest.mark.parametrize(
    "changes",
    [
        {"rating": Rating.UP},
        {"rating": Rating.UP, "last_turn_at": JUST_NOW},
        {"rating": Rating.UP, "substantive_answer": False},
        # A thumbs-down changed to a thumbs-up: the thumbs-down's flag stays, the customer's word wins.
        {"rating": Rating.UP, "escalated": True, "escalation_reason": EscalationReason.THUMBS_DOWN},
    ],
)
def test_rule_3_a_thumbs_up_is_confirmed(changes: dict[str, object]) -> None:
    assert outcome(**changes) == Outcome.CONFIRMED


@pytest.mark.parametrize(
    "changes",
    [
        {"substantive_question": False},
        {"substantive_question": False, "last_turn_at": JUST_NOW},
        {"substantive_question": False, "substantive_answer": False, "last_turn_at": None},
    ],
)
def test_rule_4_no_substantive_question_is_abandoned_at_once(changes: dict[str, object]) -> None:
    assert outcome(**changes) == Outcome.ABANDONED


@pytest.mark.parametrize(
    "changes",
    [
        {"last_turn_at": JUST_NOW},
        {"last_turn_at": NOW - WINDOW + timedelta(seconds=1)},
        {"last_turn_at": JUST_NOW, "substantive_answer": False},
        {"last_turn_at": None},
    ],
)
def test_rule_5_inside_the_window_it_is_open(changes: dict[str, object]) -> None:
    assert outcome(**changes) == Outcome.OPEN


@pytest.mark.parametrize("changes", [{}, {"last_turn_at": NOW - WINDOW}, {"last_turn_at": NOW - 10 * WINDOW}])
def test_rule_6_a_substantive_answer_with_no_return_in_the_window_is_assumed(changes: dict[str, object]) -> None:
    assert outcome(**changes) == Outcome.ASSUMED


@pytest.mark.parametrize("changes", [{"substantive_answer": False}, {"substantive_answer": False, "rating": ""}])
def test_rule_7_a_question_never_answered_is_abandoned_once_the_window_passes(changes: dict[str, object]) -> None:
    assert outcome(**changes) == Outcome.ABANDONED


@pytest.mark.parametrize(
    ("text", "substantive"),
    [
        ("", False),
        ("   ", False),
        ("?!", False),
        ("hello", False),
        ("booking", False),
        ("Hi there!", False),
        ("thanks a lot", False),
        ("ok cool", False),
        ("Good morning", False),
        ("How much is it?", True),
        ("booking cancelled", True),
        ("Where's my refund", True),
        ("Hi, can I change my table?", True),
        ("You can change it under Bookings > Edit.", True),
    ],
)
def test_substantive_means_two_words_or_more_not_all_small_talk(text: str, substantive: bool) -> None:
    assert is_substantive(text) is substantive
