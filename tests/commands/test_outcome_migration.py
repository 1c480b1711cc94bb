"""Migration 0009 on a database with conversations: each gets its outcome, and the state rollups are
recounted with outcome, cost and venue (as rebuild_rollups would). Each step is its own manage.py process."""

from __future__ import annotations

import json

from tests.commands.test_migrations_upgrade import _manage, fresh_database_env

__all__ = ["fresh_database_env"]  # the throwaway-database fixture, shared with the upgrade test

WRITE_ROWS = """
from datetime import timedelta
from django.db import connection
from django.db.models import F
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
old = MigrationLoader(connection).project_state(("support", "0008_human_handoff")).apps
Conversation, Message, Rollup = (
    old.get_model("support", name) for name in ("Conversation", "Message", "DailyConversationRollup")
)
past = timezone.now() - timedelta(days=2)
rows = [
    ("answered", False, "", [("user", "How much does it cost?"), ("assistant", "From £0 a month.")], 700, "b7"),
    ("greeting", False, "", [("user", "hello"), ("assistant", "Hi!")], 300, ""),
    ("handed over", True, "human_requested", [("user", "I want a person"), ("assistant", "Passing on.")], 500, "b8"),
]
for summary, escalated, reason, turns, cost, business_id in rows:
    conversation = Conversation.objects.create(
        summary=summary, token_hash="h", created_at=past, escalated=escalated, escalation_reason=reason,
        business_id=business_id,
        cost_micros=cost, status="needs_review" if escalated else "auto_resolved",
    )
    for role, content in turns:
        Message.objects.create(conversation=conversation, role=role, content=content, created_at=past)
    row, _ = Rollup.objects.get_or_create(
        day=past.date(), source="web", status=conversation.status, escalated=escalated,
        escalation_reason=reason, rating="",
    )
    Rollup.objects.filter(pk=row.pk).update(conversations=F("conversations") + 1)
"""

READ_ROWS = """
import json
from support.models import Conversation, DailyConversationRollup
from support import selectors
rows = DailyConversationRollup.objects.all()
print(json.dumps({
    "outcomes": {c.summary: c.outcome for c in Conversation.objects.all()},
    "rollup": sorted([r.outcome, r.business_id, r.conversations, r.cost_micros] for r in rows),
    "resolution_pct": selectors.analytics_summary(days=7)["resolution_pct"],
}))
"""


def test_migrating_gives_existing_conversations_their_outcome_and_recounts_the_state_rollups(
    fresh_database_env: dict[str, str],
) -> None:
    _manage(fresh_database_env, "migrate", "support", "0008_human_handoff", "--no-input")
    _manage(fresh_database_env, "shell", "--no-imports", "-c", WRITE_ROWS)
    _manage(fresh_database_env, "migrate", "--no-input")
    rows = json.loads(_manage(fresh_database_env, "shell", "--no-imports", "-c", READ_ROWS).splitlines()[-1])
    assert rows == {
        "outcomes": {"answered": "assumed", "greeting": "abandoned", "handed over": "escalated"},
        "rollup": [["abandoned", "", 1, 300], ["assumed", "b7", 1, 700], ["escalated", "b8", 1, 500]],
        "resolution_pct": 50.0,
    }
