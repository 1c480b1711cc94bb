"""Reads. Each returns a queryset (or plain data) with the joins its callers need, or None when a thing is missing.

Callers use `from support import selectors; selectors.X`: every public name of the modules is re-exported here.
"""

from __future__ import annotations

from support.selectors.analytics import (
    analytics_summary,
    venue_filter,
)
from support.selectors.botcheck import botcheck_list, botcheck_results, botcheck_run_get, botcheck_run_latest
from support.selectors.budget import daily_spend_today
from support.selectors.business import Venue, business_profile_get, customer_history, venue_for
from support.selectors.canned import canned_reply_list_active
from support.selectors.conversations import (
    FIRST_RESPONSE_CHOICES,
    ConversationFilters,
    Escalation,
    conversation_assignees_attach,
    conversation_get,
    conversation_list,
    conversation_pk,
    conversation_search,
    conversation_token_matches,
    escalation_list,
    event_list,
    first_response_q,
    ticket_list,
    ticket_note_list,
    token_hash,
)
from support.selectors.dates import MAX_WINDOW_DAYS, Window, utc_midnight, window_error, window_for
from support.selectors.idempotency import idempotency_record_get
from support.selectors.knowledge import knowledge_article_list_active
from support.selectors.messages import (
    CLIENT_COLUMNS,
    TOKEN_KINDS,
    USAGE_COLUMNS,
    assistant_message_get,
    conversation_agent,
    conversation_ids_with,
    conversation_messages_attach,
    message_get,
    message_latest_id,
    message_list,
    message_list_after,
    message_pk,
    message_recent,
    message_reply_to,
    message_usage_sums,
    messages_by_conversation,
    usage_model_filter,
)

# The widget poll's cached state (issue 12's polling bench).
from support.selectors.poll import (
    PollState,
    PollStateRead,
    conversation_last_seen,
    poll_state_get,
    poll_state_get_counting,
    poll_version_get,
)
from support.selectors.prices import model_is_known, models_prices_in_effect
from support.selectors.queue import queue_escalations_since
from support.selectors.reports import (
    CLIENT_REPORT_COLUMNS,
    COST_REPORT_GROUPS,
    NO_AUDIENCE,
    NO_BUSINESS,
    NO_MODEL,
    CostReport,
    CostRow,
    cost_report,
)
from support.selectors.scope import allowed_business_ids, business_visible, conversation_scope
from support.selectors.users import agent_display, staff_user_get, staff_user_list
from support.selectors.webhooks import webhook_delivery_list, webhook_endpoint_list
from support.selectors.widget import widget_config

__all__ = [
    "CLIENT_COLUMNS",
    "CLIENT_REPORT_COLUMNS",
    "COST_REPORT_GROUPS",
    "FIRST_RESPONSE_CHOICES",
    "MAX_WINDOW_DAYS",
    "NO_AUDIENCE",
    "NO_BUSINESS",
    "NO_MODEL",
    "TOKEN_KINDS",
    "USAGE_COLUMNS",
    "ConversationFilters",
    "CostReport",
    "CostRow",
    "Escalation",
    "PollState",
    "PollStateRead",
    "Venue",
    "Window",
    "agent_display",
    "allowed_business_ids",
    "analytics_summary",
    "assistant_message_get",
    "botcheck_list",
    "botcheck_results",
    "botcheck_run_get",
    "botcheck_run_latest",
    "business_profile_get",
    "business_visible",
    "canned_reply_list_active",
    "conversation_agent",
    "conversation_assignees_attach",
    "conversation_get",
    "conversation_ids_with",
    "conversation_last_seen",
    "conversation_list",
    "conversation_messages_attach",
    "conversation_pk",
    "conversation_scope",
    "conversation_search",
    "conversation_token_matches",
    "cost_report",
    "customer_history",
    "daily_spend_today",
    "escalation_list",
    "event_list",
    "first_response_q",
    "idempotency_record_get",
    "knowledge_article_list_active",
    "message_get",
    "message_latest_id",
    "message_list",
    "message_list_after",
    "message_pk",
    "message_recent",
    "message_reply_to",
    "message_usage_sums",
    "messages_by_conversation",
    "model_is_known",
    "models_prices_in_effect",
    "poll_state_get",
    "poll_state_get_counting",
    "poll_version_get",
    "queue_escalations_since",
    "staff_user_get",
    "staff_user_list",
    "ticket_list",
    "ticket_note_list",
    "token_hash",
    "usage_model_filter",
    "utc_midnight",
    "venue_filter",
    "venue_for",
    "webhook_delivery_list",
    "webhook_endpoint_list",
    "widget_config",
    "window_error",
    "window_for",
]

# Retention, erasure and export (issue 15).
from support.selectors.retention import (
    conversation_id_batches,
    conversations_export,
    conversations_of_subject,
    conversations_older_than,
    deleted_days,
    erasure_record_list,
)

__all__ += [
    "conversation_id_batches",
    "conversations_export",
    "conversations_of_subject",
    "conversations_older_than",
    "deleted_days",
    "erasure_record_list",
]
