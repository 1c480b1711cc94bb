"""The tables, by domain. Everything is importable from `support.models` as before."""

from __future__ import annotations

from support.fields import AutoPrimaryKey
from support.models.business import BusinessProfile
from support.models.canned import CannedReply
from support.models.choices import (
    HANDOFF_REASONS,
    MICROS_PER_USD,
    QUEUE_STATUSES,
    Audience,
    ErasureKind,
    EscalationReason,
    EventField,
    HandledBy,
    MessageOrigin,
    Rating,
    Role,
    Source,
    Status,
)
from support.models.conversations import Conversation, Message
from support.models.history import AppendOnlyModel, TicketEvent, TicketNote
from support.models.idempotency import IdempotencyRecord
from support.models.knowledge import DailyGroundingRollup, KnowledgeArticle
from support.models.prices import ModelPrice
from support.models.retention import ErasureRecord
from support.models.rollups import (
    DailyCloseRollup,
    DailyConversationRollup,
    DailyQuestionRollup,
    DailySpend,
    DailyUsageRollup,
)
from support.models.scope import StaffScope
from support.models.webhooks import (
    WEBHOOK_EVENTS,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "HANDOFF_REASONS",
    "MICROS_PER_USD",
    "QUEUE_STATUSES",
    "WEBHOOK_EVENTS",
    "AppendOnlyModel",
    "Audience",
    "AutoPrimaryKey",
    "BusinessProfile",
    "CannedReply",
    "Conversation",
    "DailyCloseRollup",
    "DailyConversationRollup",
    "DailyGroundingRollup",
    "DailyQuestionRollup",
    "DailySpend",
    "DailyUsageRollup",
    "DeliveryStatus",
    "ErasureKind",
    "ErasureRecord",
    "EscalationReason",
    "EventField",
    "HandledBy",
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
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
# i15venues (issue 15)
__all__ += ["Audience", "StaffScope"]
