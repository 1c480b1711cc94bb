"""A small support desk built through the services, for dashboard, admin, command and browser tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from support import services
from support.models import Conversation, EscalationReason, Message, ModelPrice, Status, TicketEvent

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


def haiku_price_doubled(*, days_back: int) -> ModelPrice:
    """A price correction for claude-haiku-4-5, in effect from `days_back` days ago: twice the seed price."""
    return ModelPrice.objects.create(
        model="claude-haiku-4-5",
        input_per_mtok_micros=2_000_000,
        output_per_mtok_micros=10_000_000,
        cache_write_5m_per_mtok_micros=2_500_000,
        cache_write_1h_per_mtok_micros=4_000_000,
        cache_read_per_mtok_micros=200_000,
        effective_from=timezone.now() - timedelta(days=days_back),
    )


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
    for conversation, rating in ((made[0], "up"), (made[1], "down"), (made[4], "up")):
        services.conversation_rate(conversation=conversation, rating=rating)
    services.rollups_rebuild()
    return made


SHOWCASE_QUESTIONS = [
    ("How much does Rezvo cost?", "Plans start at £0 for one venue; Pro is £29 a month."),
    ("How do I cancel a booking?", "Open the booking in your dashboard and choose Cancel."),
    ("Can diners pay a deposit online?", "Yes: turn on deposits under Settings → Payments."),
    ("How do I add a second venue?", "Go to Venues → Add venue; each venue has its own floor plan."),
    ("Why didn't my guest get a reminder SMS?", "Reminders go 24 h before; check the guest's number."),
    ("Can I export my bookings to Excel?", "Yes: Reports → Bookings → Export CSV."),
    ("How do I change my opening hours?", "Settings → Opening hours; changes apply to new bookings."),
    ("I was charged twice this month", "I can't see billing details; please email support@rezvo.co.uk."),
]


def build_showcase(*, staff: Any, other: Any, days: int = 30, seed: int = 7) -> list[Conversation]:
    """About a hundred realistic conversations over `days` days, for screenshots and browser tests."""
    import random

    rng = random.Random(seed)
    now = timezone.now()
    sources = ["web", "web", "web", "app_owner", "app_owner", "app_diner", "dashboard"]
    reasons = [
        EscalationReason.SUPPORT_EMAIL,
        EscalationReason.HUMAN_REQUESTED,
        EscalationReason.WIDGET_FLAG,
        EscalationReason.BOT_TOOL,
    ]
    made: list[Conversation] = []
    for day in range(days):
        for _ in range(rng.randint(1, 3) + (days - day) // 8):
            question, answer = rng.choice(SHOWCASE_QUESTIONS)
            model = "claude-sonnet-4-5" if rng.random() < 0.25 else "claude-haiku-4-5"
            conversation, _ = services.conversation_create(
                source=rng.choice(sources), page_url="https://rezvo.co.uk/app/bookings"
            )
            services.message_log(
                conversation=conversation, turns=turn_pair(question, answer, model=model, tokens=rng.randint(300, 1400))
            )
            escalate = rng.random() < 0.3 or "charged twice" in question
            if escalate:
                services.message_log(
                    conversation=conversation,
                    turns=turn_pair(
                        "Can I talk to a person?",
                        "Of course: I've passed this to the team; they'll reply by email.",
                        model=model,
                        tokens=rng.randint(200, 900),
                    ),
                    is_escalation=True,
                    escalation_reason=rng.choice(reasons),
                    escalation_detail="Customer asked for a refund of a duplicate charge."
                    if "charged" in question
                    else "",
                )
                roll = rng.random()
                if day > 2 and roll < 0.6:
                    services.conversation_update(conversation=conversation, actor=staff, changes={"status": "closed"})
                elif roll < 0.7:
                    services.conversation_update(conversation=conversation, actor=staff, changes={"status": "open"})
                elif roll < 0.8:
                    services.conversation_update(
                        conversation=conversation,
                        actor=staff,
                        changes={"status": "in_progress", "assigned_to": rng.choice([staff, other])},
                    )
            created = now - timedelta(days=day, hours=rng.randint(0, 10), minutes=rng.randint(0, 59))
            changes: dict[str, Any] = {"created_at": created}
            if conversation.escalated:
                changes["escalated_at"] = created + timedelta(minutes=2)
            if conversation.status == Status.CLOSED:
                changes["closed_at"] = created + timedelta(minutes=2, hours=rng.choice([1, 2, 3, 5, 8, 20, 30]))
            Conversation.objects.filter(pk=conversation.pk).update(**changes)
            # Turns and history a few minutes apart after the (backdated) start, as they happened.
            for step, message in enumerate(Message.objects.filter(conversation=conversation).order_by("pk")):
                Message.objects.filter(pk=message.pk).update(created_at=created + timedelta(seconds=40 * step))
            batch, last_actor = -1, None
            for event in TicketEvent.objects.filter(conversation=conversation).order_by("pk"):
                if event.actor_label != last_actor:  # one action writes several events at one moment
                    batch, last_actor = batch + 1, event.actor_label
                TicketEvent.objects.filter(pk=event.pk).update(created_at=created + timedelta(minutes=2 + 45 * batch))
            made.append(conversation)
    for conversation, rating in ((made[0], "up"), (made[1], "down"), (made[4], "up")):
        services.conversation_rate(conversation=conversation, rating=rating)
    services.rollups_rebuild()
    return made
