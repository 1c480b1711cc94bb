"""Two venues (b7, b8), both audiences and one conversation with no business, built through the services
(so the rollups are the live ones), and staff limited to one venue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from support import services
from support.models import Conversation, EscalationReason, StaffScope, Status
from tests.fakes.desk import turn_pair

#: (business_id, audience, source, model, question, escalation reason, final status)
PLAN: list[tuple[str, str, str, str, str, str | None, str | None]] = [
    ("b7", "diner", "web", "claude-haiku-4-5", "How much is it?", None, None),
    ("b7", "owner", "app_owner", "claude-sonnet-4-5", "How do I add a table?", EscalationReason.HUMAN_REQUESTED, None),
    ("b7", "diner", "app_diner", "claude-haiku-4-5", "Where is my booking?", EscalationReason.WIDGET_FLAG, "closed"),
    ("b8", "diner", "web", "claude-haiku-4-5", "How much is it?", EscalationReason.SUPPORT_EMAIL, None),
    ("b8", "owner", "app_owner", "claude-sonnet-4-5", "Can I export bookings?", None, None),
    ("b8", "owner", "web", "claude-haiku-4-5", "Can I export bookings?", None, Status.OPEN),
    ("", "", "web", "claude-haiku-4-5", "Hello there", EscalationReason.WIDGET_FLAG, None),
]


@dataclass
class Venues:
    conversations: list[Conversation]

    def of(self, business_id: str) -> list[Conversation]:
        return [c for c in self.conversations if c.business_id == business_id]


def build_venues(*, staff: Any) -> Venues:
    made = []
    for business_id, audience, source, model, question, reason, final in PLAN:
        conversation, _ = services.conversation_create(source=source, business_id=business_id, audience=audience)
        services.message_log(conversation=conversation, turns=turn_pair(question, "Here is what I found.", model=model))
        if reason:
            services.message_log(
                conversation=conversation,
                turns=turn_pair("I need a person", "A person will answer.", model=model, tokens=20),
                is_escalation=True,
                escalation_reason=reason,
            )
        if final:
            services.conversation_update(conversation=conversation, actor=staff, changes={"status": final})
        conversation.refresh_from_db()
        made.append(conversation)
    return Venues(conversations=made)


def limit_to(user: Any, *business_ids: str) -> Any:
    """Limit a staff user to these businesses (the admin's StaffScope row)."""
    StaffScope.objects.update_or_create(user=user, defaults={"business_ids": list(business_ids)})
    user.refresh_from_db()
    if hasattr(user, "_support_business_scope"):
        del user._support_business_scope
    return user
