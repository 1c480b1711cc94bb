"""The tables, by domain. Everything is importable from `support.models` as before."""

from __future__ import annotations

# The primary key class named by SupportConfig.default_auto_field, imported so the type checker knows
# the type of every foreign key's `_id` to our tables.
from support.fields import AutoPrimaryKey
from support.models.canned import CannedReply
from support.models.choices import (
    MICROS_PER_USD,
    QUEUE_STATUSES,
    EscalationReason,
    EventField,
    MessageOrigin,
    Rating,
    Role,
    Source,
    Status,
)
from support.models.conversations import Conversation, Message
from support.models.history import AppendOnlyModel, TicketEvent, TicketNote
from support.models.idempotency import IdempotencyRecord
from support.models.knowledge import KnowledgeArticle
from support.models.prices import ModelPrice
from support.models.rollups import (
    DailyCloseRollup,
    DailyConversationRollup,
    DailyQuestionRollup,
    DailySpend,
    DailyUsageRollup,
)

__all__ = [
    "MICROS_PER_USD",
    "QUEUE_STATUSES",
    "AppendOnlyModel",
    "AutoPrimaryKey",
    "CannedReply",
    "Conversation",
    "DailyCloseRollup",
    "DailyConversationRollup",
    "DailyQuestionRollup",
    "DailySpend",
    "DailyUsageRollup",
    "EscalationReason",
    "EventField",
    "IdempotencyRecord",
    "KnowledgeArticle",
    "Message",
    "MessageOrigin",
    "ModelPrice",
    "Rating",
    "Role",
    "Source",
    "Status",
    "TicketEvent",
    "TicketNote",
]
