"""What a conversation really achieved: the outcome rules, in one place. No database access.

The rules, first match wins (the README's "Outcomes" section says the same):

1. `negative`   the customer's latest rating is a thumbs-down.
2. `escalated`  the conversation is escalated (for any reason but a thumbs-down, which rule 1 covers:
                a thumbs-down later changed to a thumbs-up leaves that flag behind, and rule 3 applies).
3. `confirmed`  the customer's latest rating is a thumbs-up (the widget's "Did that answer your
                question?" Yes is a thumbs-up on that answer).
4. `abandoned`  the customer never asked a substantive question (greetings, empty, single words).
5. `open`       the resolution window (SUPPORT_RESOLUTION_WINDOW_HOURS after the latest turn) is not over:
                a customer who comes back inside it moves the window, so an assumed resolution reverts.
6. `assumed`    the bot gave at least one substantive answer and the window passed without a return.
7. `abandoned`  the window passed and the bot never gave a substantive answer (the customer left first).

"Substantive" (is_substantive): at least two words once punctuation is gone, and not only greetings,
thanks or acknowledgements ("hi there", "thanks a lot", "ok cool"). It applies to the customer's
questions and the bot's answers alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from support.models.choices import EscalationReason, Outcome, Rating
from support.pricing import micros_to_usd

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

#: Words that carry no question or answer on their own: a message of only these is small talk.
SMALL_TALK = frozenset(
    """
    hi hello hey hiya howdy yo morning afternoon evening good day there all
    thanks thank you thx ty cheers ta much lot so very many great
    ok okay k kk cool nice fine sure yes yeah yep no nope bye goodbye see ya later cya
    please pls hmm um uh ah oh lol test testing a an the for that it this got
    perfect awesome brilliant lovely understood noted helped helps
    """.split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def is_substantive(text: str) -> bool:
    """A real question or answer: two words or more, not all of them small talk."""
    found = words(text)
    return len(found) >= 2 and not all(word in SMALL_TALK for word in found)


@dataclass(frozen=True, kw_only=True)
class OutcomeInputs:
    """Everything the rules read of a conversation."""

    rating: str
    escalated: bool
    escalation_reason: str
    substantive_question: bool
    substantive_answer: bool
    last_turn_at: datetime | None


def outcome_of(inputs: OutcomeInputs, *, now: datetime, window: timedelta) -> Outcome:
    """The conversation's outcome at `now` (the module's docstring lists the rules in order)."""
    if inputs.rating == Rating.DOWN:
        return Outcome.NEGATIVE
    if inputs.escalated and inputs.escalation_reason != EscalationReason.THUMBS_DOWN:
        return Outcome.ESCALATED
    if inputs.rating == Rating.UP:
        return Outcome.CONFIRMED
    if not inputs.substantive_question:
        return Outcome.ABANDONED
    if inputs.last_turn_at is None or now < inputs.last_turn_at + window:
        return Outcome.OPEN
    return Outcome.ASSUMED if inputs.substantive_answer else Outcome.ABANDONED


#: The Conversation fields outcome_of reads besides the rollup's state fields (support.rollups.STATE_FIELDS).
OUTCOME_INPUT_FIELDS = ("substantive_question", "substantive_answer", "last_turn_at")


def inputs_of(values: object) -> OutcomeInputs:
    """The rule inputs of a conversation (or anything with the same attributes)."""
    return OutcomeInputs(
        rating=getattr(values, "rating", "") or "",
        escalated=bool(getattr(values, "escalated", False)),
        escalation_reason=getattr(values, "escalation_reason", "") or "",
        substantive_question=bool(getattr(values, "substantive_question", False)),
        substantive_answer=bool(getattr(values, "substantive_answer", False)),
        last_turn_at=getattr(values, "last_turn_at", None),
    )


def resolution_window() -> timedelta:
    return timedelta(hours=settings.SUPPORT_RESOLUTION_WINDOW_HOURS)


#: Outcomes that count as resolved by the bot (the resolution rate's numerator).
RESOLVED = (Outcome.CONFIRMED, Outcome.ASSUMED)
#: Outcomes outside the resolution rate's denominator: nothing was asked.
NOT_COUNTED = (Outcome.ABANDONED,)


def resolution_figures(*, counts: dict[str, int], costs: dict[str, int], total_cost: int) -> dict[str, Any]:
    """The outcome figures of a set of conversations (analytics from the rollups, cost_report from the rows).

    The rate's denominator is the decided conversations with a real question: confirmed, assumed, escalated
    and negative. Abandoned ones (nothing asked) are left out, and so are open ones (not decided yet).
    Cost per (confirmed) resolution is the whole Claude cost of the set over those resolutions: what one
    resolution costs, comparable with a vendor's price per resolution.
    """
    confirmed, assumed = counts.get(Outcome.CONFIRMED, 0), counts.get(Outcome.ASSUMED, 0)
    resolved = confirmed + assumed
    decided = resolved + counts.get(Outcome.ESCALATED, 0) + counts.get(Outcome.NEGATIVE, 0)

    def pct(part: int) -> float | None:
        return round(100.0 * part / decided, 2) if decided else None

    def per(count: int) -> float | None:
        return micros_to_usd(round(total_cost / count)) if count else None

    return {
        "by_outcome": [
            {
                "outcome": value,
                "label": label,
                "count": counts.get(value, 0),
                "cost_micros": costs.get(value, 0),
                "cost_usd": micros_to_usd(costs.get(value, 0)),
            }
            for value, label in Outcome.choices
        ],
        "resolution_denominator": decided,
        "resolved_count": resolved,
        "confirmed_count": confirmed,
        "assumed_count": assumed,
        "resolution_pct": pct(resolved),
        "confirmed_resolution_pct": pct(confirmed),
        "assumed_resolution_pct": pct(assumed),
        "open_count": counts.get(Outcome.OPEN, 0),
        "cost_per_resolution_usd": per(resolved),
        "cost_per_confirmed_resolution_usd": per(confirmed),
        "escalated_outcome_count": counts.get(Outcome.ESCALATED, 0),
        "escalated_cost_micros": costs.get(Outcome.ESCALATED, 0),
        "escalated_cost_usd": micros_to_usd(costs.get(Outcome.ESCALATED, 0)),
        "abandoned_count": counts.get(Outcome.ABANDONED, 0),
        "abandoned_cost_micros": costs.get(Outcome.ABANDONED, 0),
        "abandoned_cost_usd": micros_to_usd(costs.get(Outcome.ABANDONED, 0)),
    }
