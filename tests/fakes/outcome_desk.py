"""Conversations in every outcome (support/outcomes.py), built through the services, for the outcome figures."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from support import services
from support.models import Conversation, EscalationReason
from tests.fakes.desk import turn_pair

#: How many conversations build_outcome_desk makes in each outcome.
PLAN = {"confirmed": 2, "assumed": 1, "escalated": 1, "negative": 1, "abandoned": 2, "open": 1}


def _answered(tokens: int) -> Conversation:
    conversation, _ = services.conversation_create()
    services.message_log(
        conversation=conversation, turns=turn_pair("How much is it?", "From £0 a month.", tokens=tokens)
    )
    return conversation


def build_outcome_desk() -> dict[str, list[Conversation]]:
    """PLAN's conversations, today, each with a different cost; the settle job has run."""
    made: dict[str, list[Conversation]] = {name: [] for name in PLAN}
    for index in range(PLAN["confirmed"]):
        conversation = _answered(100 + index)
        services.conversation_rate(conversation=conversation, rating="up")
        made["confirmed"].append(conversation)
    made["assumed"].append(_answered(200))
    escalated = _answered(300)
    services.message_log(
        conversation=escalated,
        turns=turn_pair("I want a person", "Passing you on.", tokens=30),
        is_escalation=True,
        escalation_reason=EscalationReason.HUMAN_REQUESTED,
    )
    made["escalated"].append(escalated)
    negative = _answered(400)
    services.conversation_rate(conversation=negative, rating="down")
    made["negative"].append(negative)
    for tokens in (50, 60):
        conversation, _ = services.conversation_create()
        services.message_log(conversation=conversation, turns=turn_pair("hello", "Hi! How can I help?", tokens=tokens))
        made["abandoned"].append(conversation)
    made["open"].append(_answered(500))
    # The assumed one's window ran out; the settle job decides it.
    past = timezone.now() - timedelta(hours=25)
    Conversation.objects.filter(pk=made["assumed"][0].pk).update(last_turn_at=past)
    services.conversations_outcome_settle()
    for conversations in made.values():
        for conversation in conversations:
            conversation.refresh_from_db()
    return made
