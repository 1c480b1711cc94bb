"""The tables, by domain. Everything is importable from `support.models` as before."""

from __future__ import annotations

from support.fields import AutoPrimaryKey
from support.models.botcheck import BotCheck, BotCheckResult, BotCheckRun
from support.models.business import BusinessProfile
from support.models.canned import CannedReply
from support.models.choices import (
    HANDOFF_REASONS,
    MICROS_PER_USD,
    QUEUE_STATUSES,
    Audience,
    BotCheckEscalation,
    BotCheckResponder,
    BotCheckRunStatus,
    ErasureKind,
    EscalationReason,
    EventField,
    HandledBy,
    MessageOrigin,
    Outcome,
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
    DailyModelUsageRollup,
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
    "BotCheck",
    "BotCheckEscalation",
    "BotCheckResponder",
    "BotCheckResult",
    "BotCheckRun",
    "BotCheckRunStatus",
    "BusinessProfile",
    "CannedReply",
    "Conversation",
    "DailyCloseRollup",
    "DailyConversationRollup",
    "DailyGroundingRollup",
    "DailyModelUsageRollup",
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
    "Outcome",
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
