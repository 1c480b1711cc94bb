"""Pure helpers behind the daily rollups: which row a conversation counts in. No database access."""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from support.models import Conversation

#: Upper bounds (seconds) of the escalation-to-close duration buckets; a last bucket holds the rest.
#: Roughly 1.5-2x apart, so a median read from them is within a bucket's width of the exact one.
CLOSE_BUCKET_BOUNDS_S: tuple[int, ...] = (
    60,
    120,
    300,
    600,
    900,
    1800,
    2700,
    3600,
    5400,
    7200,
    10800,
    14400,
    21600,
    28800,
    43200,
    64800,
    86400,
    129600,
    172800,
    259200,
    345600,
    432000,
    604800,
    864000,
    1209600,
    1814400,
    2592000,
)
NO_BUCKET = -1

#: Every field the rollup rows read (state_key). A change is written only if none of them moved
#: since it was computed, so the conversation leaves exactly the rollup rows it was counted in.
STATE_FIELDS = (
    "created_at",
    "source",
    "status",
    "rating",
    "escalated",
    "escalation_reason",
    "escalated_at",
    "closed_at",
    "outcome",
    # issue 15: every rollup row is also per business and audience, so filters stay O(days).
    "business_id",
    "audience",
)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def close_bucket(*, status: str, escalated: bool, escalated_at: datetime | None, closed_at: datetime | None) -> int:
    """The duration bucket of an escalated conversation that is now closed; NO_BUCKET for any other."""
    if status != "closed" or not escalated or escalated_at is None or closed_at is None:
        return NO_BUCKET
    seconds = max((closed_at - escalated_at).total_seconds(), 0.0)
    return bisect_left(CLOSE_BUCKET_BOUNDS_S, seconds)


@dataclass(frozen=True)
class StateKey:
    """The rollup rows a conversation counts in (DailyConversationRollup, and DailyCloseRollup if closed)."""

    day: date
    source: str
    status: str
    escalated: bool
    escalation_reason: str
    close_bucket: int
    rating: str = ""
    outcome: str = ""
    business_id: str = ""
    audience: str = ""

    def as_filter(self) -> dict[str, object]:
        """The DailyConversationRollup row."""
        return {
            "day": self.day,
            "source": self.source,
            "status": self.status,
            "escalated": self.escalated,
            "escalation_reason": self.escalation_reason,
            "rating": self.rating,
            "outcome": self.outcome,
            "business_id": self.business_id,
            "audience": self.audience,
        }

    def close_filter(self) -> dict[str, object] | None:
        """The DailyCloseRollup row, for an escalated conversation that is now closed."""
        if self.close_bucket == NO_BUCKET:
            return None
        return {
            "day": self.day,
            "close_bucket": self.close_bucket,
            "business_id": self.business_id,
            "audience": self.audience,
        }


def state_key(
    *,
    created_at: datetime,
    source: str,
    status: str,
    escalated: bool,
    escalation_reason: str,
    escalated_at: datetime | None,
    closed_at: datetime | None,
    rating: str = "",
    outcome: str = "",
    business_id: str = "",
    audience: str = "",
) -> StateKey:
    return StateKey(
        day=utc_day(created_at),
        source=source,
        status=status,
        escalated=escalated,
        escalation_reason=escalation_reason or "",
        close_bucket=close_bucket(status=status, escalated=escalated, escalated_at=escalated_at, closed_at=closed_at),
        rating=rating or "",
        outcome=outcome or "",
        business_id=business_id or "",
        audience=audience or "",
    )


def state_key_of(conversation: Conversation) -> StateKey:
    return state_key(
        created_at=conversation.created_at,
        source=conversation.source,
        status=conversation.status,
        escalated=conversation.escalated,
        escalation_reason=conversation.escalation_reason,
        escalated_at=conversation.escalated_at,
        closed_at=conversation.closed_at,
        rating=conversation.rating,
        outcome=conversation.outcome,
        business_id=conversation.business_id,
        audience=conversation.audience,
    )


def venue_key(conversation: Conversation) -> dict[str, str]:
    """The business and audience fields of every rollup row a conversation counts in."""
    return {"business_id": conversation.business_id or "", "audience": conversation.audience or ""}


def median_from_buckets(counts: dict[int, int]) -> float | None:
    """Median duration in seconds, interpolated linearly inside the bucket that holds the middle value."""
    total = sum(n for n in counts.values() if n > 0)
    if not total:
        return None
    half = total / 2
    seen = 0
    for bucket in sorted(counts):
        n = counts[bucket]
        if n <= 0:
            continue
        if seen + n >= half:
            lower = CLOSE_BUCKET_BOUNDS_S[bucket - 1] if bucket > 0 else 0
            if bucket >= len(CLOSE_BUCKET_BOUNDS_S):
                return float(lower)  # open-ended last bucket: report its lower bound
            upper = CLOSE_BUCKET_BOUNDS_S[bucket]
            return lower + (upper - lower) * (half - seen) / n
        seen += n
    return None  # pragma: no cover - the loop always reaches half


def humanize_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


#: The usage row (rollups, analytics' by_model, cost_report --by model) of the offline responder's
#: replies: they are stored with no model, and a blank row hid the conversations the knowledge base answered.
KNOWLEDGE_BASE = "knowledge base (offline)"


def usage_model_key(model: str, role: str) -> str:
    """The usage row a turn counts in: its model; an unpriced bot reply is the knowledge base's.

    Customer turns and staff replies (Role.AGENT) logged without a model stay under "" (no Claude usage;
    analytics count them as messages, never in a model's tokens or cost).
    """
    if model:
        return model
    return KNOWLEDGE_BASE if role == "assistant" else ""


# --- The question rollups' key ---------------------------------------------------------------
#: Curly and modifier apostrophes (U+2019 and kin) are written as the straight one, so both spellings group.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})
_NON_WORD = re.compile(r"[^\w\s']+", re.UNICODE)
#: An apostrophe that is not between two letters is a quote mark, not part of a word.
_STRAY_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")


def normalise_question(text: str) -> str:
    """Group 'How much is it?' with 'how much is it': lower case, no punctuation, single spaces.

    Apostrophes inside words stay ("i can't log in", not "i can t log in"), so the key reads as asked.
    """
    cleaned = _NON_WORD.sub(" ", text.lower().translate(_APOSTROPHES))
    cleaned = _SPACES.sub(" ", _STRAY_APOSTROPHE.sub(" ", cleaned)).strip()
    return cleaned[:255]
