"""A small support desk built through the services, for dashboard, admin, command and browser tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from support import services
from support.models import Conversation, EscalationReason, Status

QUESTIONS = [
    "How much is it?",
    "how much is it",
    "Where is my booking?",
    "Can I change my table?",
    "Do you take deposits?",
    "How much is it?!",
]


def turn_pair(question: str, answer: str, *, model: str = "claude-haiku-4-5", tokens: int = 40) -> list[Any]:
    return [
        services.Turn(role="user", content=question, model=model, input_tokens=tokens),
        services.Turn(role="assistant", content=answer, model=model, output_tokens=tokens * 2),
    ]


def build_desk(*, staff: Any, days_back: int = 3) -> list[Conversation]:
    """Conversations over several days, sources, models and states; rollups kept by the services.

    Returns them in creation order. Ages are applied afterwards (services stamp "now"), so the
    caller's rollups come from `services.rollups_rebuild()`, which this runs at the end.
    """
    now = timezone.now()
    made: list[Conversation] = []
    plan = [
        # (age in days, source, model, question, escalate reason, final status, close after hours)
        (0, "web", "claude-haiku-4-5", QUESTIONS[0], None, None, None),
        (0, "web", "claude-sonnet-4-5", QUESTIONS[1], EscalationReason.SUPPORT_EMAIL, None, None),
        (0, "app_owner", "claude-haiku-4-5", QUESTIONS[2], EscalationReason.HUMAN_REQUESTED, Status.IN_PROGRESS, None),
        (1, "app_diner", "claude-haiku-4-5", QUESTIONS[3], EscalationReason.WIDGET_FLAG, Status.CLOSED, 2),
        (1, "web", "claude-haiku-4-5", QUESTIONS[4], None, None, None),
        (2, "dashboard", "claude-sonnet-4-5", QUESTIONS[5], EscalationReason.WIDGET_FLAG, Status.CLOSED, 30),
        (2, "web", "claude-haiku-4-5", QUESTIONS[0], None, Status.OPEN, None),
        (days_back + 40, "web", "claude-haiku-4-5", "An old question", None, None, None),
    ]
    for age, source, model, question, reason, final, close_hours in plan:
        conversation, _ = services.conversation_create(source=source, page_url=f"https://rezvo.co.uk/{source}")
        services.message_log(
            conversation=conversation,
            turns=turn_pair(question, "Here is what I found.", model=model),
        )
        if reason:
            services.message_log(
                conversation=conversation,
                turns=turn_pair("I need a person", f"Please email support ({reason}).", model=model, tokens=20),
                is_escalation=True,
                escalation_reason=reason,
            )
        if final:
            services.conversation_update(conversation=conversation, actor=staff, changes={"status": final})
        created = now - timedelta(days=age, minutes=5)
        changes: dict[str, Any] = {"created_at": created}
        if reason:
            changes["escalated_at"] = created + timedelta(minutes=1)
        if close_hours:
            changes["closed_at"] = created + timedelta(minutes=1, hours=close_hours)
        Conversation.objects.filter(pk=conversation.pk).update(**changes)
        conversation.refresh_from_db()
        made.append(conversation)
    services.rollups_rebuild()
    return made
