"""Writes. Every change to support data goes through a function here, grouped by domain:

conversations (state transitions, notes), messages (turns and counters), idempotency (the Idempotency-Key
protocol), rollups (the daily rollup tables), prices, budget (the daily Claude budget), knowledge.
"""

from __future__ import annotations

from support.db import write_transaction, writes_are_atomic
from support.services.botcheck import botcheck_run_execute, botcheck_run_start
from support.services.budget import (
    BudgetWarning,
    Reservation,
    budget_cap_micros,
    budget_warning,
    call_worst_case_micros,
    daily_spend_reserve,
    daily_spend_settle,
    request_token_bound,
)
from support.services.conversations import (
    BOT,
    EVENT_FIELDS,
    NOTES_SEPARATOR,
    STATE_FIELDS,
    SYSTEM,
    TRANSITION_ATTEMPTS,
    WIDGET,
    Changes,
    ConversationConflict,
    conversation_contact_set,
    conversation_create,
    conversation_escalate,
    conversation_outcome_refresh,
    conversation_rate,
    conversation_transition,
    conversation_update,
    conversations_outcome_settle,
    ticket_note_add,
)
from support.services.first_response import conversation_first_response_mark
from support.services.idempotency import (
    IdempotencyClaim,
    IdempotencyLeaseLost,
    IdempotencyVerdict,
    idempotency_abandon,
    idempotency_chat_claim,
    idempotency_claim,
    idempotency_complete,
    idempotency_finish,
    idempotency_prune,
    idempotency_release,
    idempotency_resume,
    idempotency_turn_attach,
    idempotency_verdict,
    idempotency_write,
    request_fingerprint,
)
from support.services.knowledge import knowledge_article_seed_samples
from support.services.messages import (
    LoggedOnce,
    Turn,
    TurnLimitReached,
    conversation_counters_add,
    conversation_recount,
    conversation_turns_release,
    conversation_turns_reserve,
    message_log,
    message_log_once,
    messages_build,
    messages_store,
)
from support.services.notifications import (
    customer_away_reply_queue,
    customer_away_reply_send,
    escalation_mail_send,
    notification_publish,
)

# The widget poll's cached state (issue 12's polling bench).
from support.services.poll import (
    conversation_seen_cache_available,
    conversation_seen_cached,
    conversation_seen_flush,
    poll_token_remember,
    poll_version_bump,
)
from support.services.prices import (
    RepriceResult,
    messages_reprice,
    model_price_ensure_defaults,
    price_resolve,
    prices_resolve,
)
from support.services.replies import (
    SEEN_WRITE_INTERVAL,
    conversation_handoff,
    conversation_reply,
    conversation_seen,
)
from support.services.rollup_fold import rollups_fold
from support.services.rollups import ProgressCallback, RebuildResult, rollup_state_move, rollups_rebuild
from support.services.webhooks import webhook_endpoint_create

__all__ = [
    "BOT",
    "EVENT_FIELDS",
    "NOTES_SEPARATOR",
    "SEEN_WRITE_INTERVAL",
    "STATE_FIELDS",
    "SYSTEM",
    "TRANSITION_ATTEMPTS",
    "WIDGET",
    "BudgetWarning",
    "Changes",
    "ConversationConflict",
    "IdempotencyClaim",
    "IdempotencyLeaseLost",
    "IdempotencyVerdict",
    "LoggedOnce",
    "ProgressCallback",
    "RebuildResult",
    "RepriceResult",
    "Reservation",
    "Turn",
    "TurnLimitReached",
    "botcheck_run_execute",
    "botcheck_run_start",
    "budget_cap_micros",
    "budget_warning",
    "call_worst_case_micros",
    "conversation_contact_set",
    "conversation_counters_add",
    "conversation_create",
    "conversation_escalate",
    "conversation_first_response_mark",
    "conversation_handoff",
    "conversation_outcome_refresh",
    "conversation_rate",
    "conversation_recount",
    "conversation_reply",
    "conversation_seen",
    "conversation_seen_cache_available",
    "conversation_seen_cached",
    "conversation_seen_flush",
    "conversation_transition",
    "conversation_turns_release",
    "conversation_turns_reserve",
    "conversation_update",
    "conversations_outcome_settle",
    "customer_away_reply_queue",
    "customer_away_reply_send",
    "daily_spend_reserve",
    "daily_spend_settle",
    "escalation_mail_send",
    "idempotency_abandon",
    "idempotency_chat_claim",
    "idempotency_claim",
    "idempotency_complete",
    "idempotency_finish",
    "idempotency_prune",
    "idempotency_release",
    "idempotency_resume",
    "idempotency_turn_attach",
    "idempotency_verdict",
    "idempotency_write",
    "knowledge_article_seed_samples",
    "message_log",
    "message_log_once",
    "messages_build",
    "messages_reprice",
    "messages_store",
    "model_price_ensure_defaults",
    "notification_publish",
    "poll_token_remember",
    "poll_version_bump",
    "price_resolve",
    "prices_resolve",
    "request_fingerprint",
    "request_token_bound",
    "rollup_state_move",
    "rollups_fold",
    "rollups_rebuild",
    "ticket_note_add",
    "webhook_endpoint_create",
    "write_transaction",
    "writes_are_atomic",
]

# Retention, erasure and the admin's delete (issue 15).
from support.services.retention import (
    RETENTION_BATCH,
    DeletionResult,
    conversations_admin_delete,
    conversations_delete,
    conversations_purge,
    subject_erase,
)

__all__ += [
    "RETENTION_BATCH",
    "DeletionResult",
    "conversations_admin_delete",
    "conversations_delete",
    "conversations_purge",
    "subject_erase",
]
