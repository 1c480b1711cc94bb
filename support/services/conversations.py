"""Writes to conversations: create, the one state transition (status, escalation, assignment, rating,
contact) with its ticket events and rollup move, and the ticket's notes."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from support import business_hours, db, outcomes, rollups
from support.identity import Identity
from support.models import (
    HANDOFF_REASONS,
    QUEUE_STATUSES,
    Conversation,
    EscalationReason,
    EventField,
    HandledBy,
    Message,
    Outcome,
    Rating,
    Role,
    Source,
    Status,
    TicketEvent,
    TicketNote,
)
from support.rollups import STATE_FIELDS
from support.selectors import token_hash
from support.services.notifications import notification_transition_publish
from support.services.poll import poll_version_bump
from support.services.rollups import rollup_state_move

logger = logging.getLogger(__name__)


WIDGET = "widget"


BOT = "bot"


SYSTEM = "system"


def conversation_create(
    *,
    source: str = Source.WEB,
    page_url: str = "",
    user_agent: str = "",
    user_id: str = "",
    business_id: str = "",
    audience: str = "",
    identity: Identity | None = None,
) -> tuple[Conversation, str]:
    """Start a conversation; returns it with its widget secret, which is stored only as a hash.

    `identity` (support.identity.identity_resolve) wins over the bare user_id/business_id claims."""
    token = secrets.token_urlsafe(32)
    identity = identity or Identity(user_id=user_id, business_id=business_id, audience=audience)
    conversation = Conversation.objects.create(
        source=source,
        page_url=page_url,
        user_agent=user_agent[:512],
        user_id=identity.user_id,
        business_id=identity.business_id,
        audience=identity.audience,
        identity_verified=identity.verified,
        contact_email=identity.email,
        contact_name=identity.name,
        token_hash=token_hash(token),
    )
    rollup_state_move(old=None, new=rollups.state_key_of(conversation))
    return conversation, token


def _event(
    *, conversation: Conversation, actor: Any, actor_label: str, field: str, old: object, new: object
) -> TicketEvent:
    return TicketEvent(
        conversation=conversation,
        actor=actor,
        actor_label=actor_label,
        field=field,
        old_value="" if old is None else str(old),
        new_value="" if new is None else str(new),
    )


def _user_label(user: Any) -> str:
    return "" if user is None else user.get_username()


class ConversationConflict(Exception):
    """A state change kept losing the race to concurrent changes of the same conversation; nothing was written.

    The API answers 409 and the dashboard shows a message: the caller may simply try again."""

    def __init__(self, conversation_id: object) -> None:
        super().__init__(f"Conversation {conversation_id} kept changing under this change; try again.")
        self.conversation_id = conversation_id


#: Fields whose change writes a ticket event; they are compared too, so each event's old value is the real one.
EVENT_FIELDS: tuple[str, ...] = (
    EventField.STATUS,
    EventField.ESCALATED,
    EventField.ESCALATION_REASON,
    EventField.ESCALATION_DETAIL,
    EventField.CONTACT_EMAIL,
    EventField.ASSIGNED_TO,
    EventField.RATING,
    EventField.HANDLED_BY,
)


TRANSITION_ATTEMPTS = 8

#: Read by a transition besides STATE_FIELDS: a concurrent change of these makes it read again.
GUARDED_TOO = (*outcomes.OUTCOME_INPUT_FIELDS, "cost_micros")


#: The changes to make, or a function of the conversation as just read that returns them (None: nothing to do).
Changes = dict[str, Any] | Callable[[Conversation], dict[str, Any] | None]


def conversation_transition(
    *, conversation: Conversation, changes: Changes, actor: Any = None, actor_label: str | None = None
) -> bool:
    """The one way to change a conversation's status, escalation, assignment, handler, rating, notes or contact.

    Compare-and-set on the state the change was computed from, one ticket event per field that really
    changes, and the rollup move, in one place. On a lost race it reads the row again by pk and recomputes,
    up to TRANSITION_ATTEMPTS times, then raises ConversationConflict. On SQLite the re-read happens under
    the write lock (IMMEDIATE transactions), so the second attempt cannot lose. Returns False when there
    was nothing to change; `conversation` is updated in memory either way.
    """
    label = actor_label or _user_label(actor) or SYSTEM
    lost = False
    for attempt in range(TRANSITION_ATTEMPTS):
        if lost:
            db.retry_spread(attempt)
        with transaction.atomic():
            if attempt:
                conversation.refresh_from_db()
            wanted = changes(conversation) if callable(changes) else changes
            updates = _transition_updates(conversation=conversation, wanted=wanted or {}, now=timezone.now())
            if not updates:
                if attempt:
                    return False
                # "Nothing to do" judged on the caller's copy, which may be stale: confirm on the stored row.
                lost = False
                continue
            lost = not _transition_write(conversation=conversation, updates=updates, actor=actor, label=label)
            if not lost:
                notification_transition_publish(conversation=conversation, updates=updates)  # sent on commit
                return True
    raise ConversationConflict(conversation.pk)


def _transition_updates(*, conversation: Conversation, wanted: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The field values to write: the wanted ones that differ, plus the stamps they imply."""
    updates: dict[str, Any] = {}
    for name, value in wanted.items():
        current = conversation.assigned_to_id if name == "assigned_to" else getattr(conversation, name)
        new = value.pk if name == "assigned_to" and value is not None else value
        if name not in EVENT_FIELDS or new != current or _escalation_entry(name, value, wanted):
            updates[name] = value
    updates |= _outcome_change(conversation, updates, now=now)
    if not _worth_a_write(updates):
        return {}  # only stamps left (escalation_detail...): no change worth a write; a re-rate is one
    if updates.get("escalated") is True and not conversation.escalated:
        updates.setdefault("escalated_at", now)
        if not (updates.get("escalation_reason") or conversation.escalation_reason):
            updates["escalation_reason"] = EscalationReason.STAFF
    if updates.get("escalated_at") is not None and "first_response_due_at" not in updates:
        # Each escalation starts a new wait for a person, timed in business hours.
        updates["first_response_due_at"] = business_hours.first_response_due(updates["escalated_at"])
        updates["first_human_response_at"] = None
    if "status" in updates and "closed_at" not in updates:
        if updates["status"] == Status.CLOSED:
            updates["closed_at"] = now
        elif conversation.status == Status.CLOSED:
            updates["closed_at"] = None
    updates["updated_at"] = now
    return updates


def _worth_a_write(updates: dict[str, Any]) -> bool:
    # A new outcome is worth a write, with no ticket event: it is derived, and its inputs have theirs.
    return "rated_at" in updates or "outcome" in updates or any(name in EVENT_FIELDS for name in updates)


def _outcome_change(conversation: Conversation, updates: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """The new outcome once `updates` are applied (support.outcomes has the rules), if it differs."""
    merged = {name: updates.get(name, getattr(conversation, name)) for name in _OUTCOME_READS}
    outcome = outcomes.outcome_of(outcomes.OutcomeInputs(**merged), now=now, window=outcomes.resolution_window())
    return {} if outcome == conversation.outcome else {"outcome": outcome}


_OUTCOME_READS = ("rating", "escalated", "escalation_reason", *outcomes.OUTCOME_INPUT_FIELDS)


def _escalation_entry(name: str, value: Any, wanted: dict[str, Any]) -> bool:
    """Every escalation is an entry in the ticket's list of escalations (selectors.escalation_list):
    its reason, and its detail when there is one, are written even when unchanged."""
    if "escalated_at" not in wanted:
        return False
    return name == EventField.ESCALATION_REASON or (name == EventField.ESCALATION_DETAIL and bool(value))


def _transition_write(*, conversation: Conversation, updates: dict[str, Any], actor: Any, label: str) -> bool:
    """Compare-and-set `updates` on the state in memory; on success write the events and move the rollups."""
    # The outcome's inputs and the cost moved with the conversation between rollup rows are guarded too.
    guard = {name: getattr(conversation, name) for name in (*STATE_FIELDS, *GUARDED_TOO)}
    for name in EVENT_FIELDS:
        if name in updates and name not in guard:
            key = "assigned_to_id" if name == "assigned_to" else name
            guard[key] = getattr(conversation, key)
    if not Conversation.objects.filter(pk=conversation.pk, **guard).update(**updates):
        return False
    poll_version_bump(conversation_id=conversation.pk)  # who answers / the status: open widgets' next poll is a 200
    events = [
        _event(
            conversation=conversation,
            actor=actor,
            actor_label=label,
            field=name,
            old=_user_label(conversation.assigned_to) if name == "assigned_to" else getattr(conversation, name),
            new=_user_label(updates[name]) if name == "assigned_to" else updates[name],
        )
        for name in updates  # in the caller's order: an escalation reads "escalated", then "status"
        if name in EVENT_FIELDS and (name != EventField.ESCALATION_DETAIL or updates[name])
    ]
    old_key = rollups.state_key_of(conversation)
    for name, value in updates.items():
        setattr(conversation, name, value)
    TicketEvent.objects.bulk_create(events)
    rollup_state_move(old=old_key, new=rollups.state_key_of(conversation), cost_micros=conversation.cost_micros)
    return True


def conversation_update(
    *, conversation: Conversation, actor: Any, changes: dict[str, Any], actor_label: str | None = None
) -> Conversation:
    """Apply staff changes (status, escalated, escalation_reason, assigned_to, handled_by, notes, contact_email).

    Each field that really changes writes one ticket event. Closing stamps closed_at; reopening clears it.
    Raises ConversationConflict when concurrent changes outlast the retries (conversation_transition).
    """
    note = str(changes.get("notes") or "").strip()
    # Notes are a timeline: the text is one more entry (ticket_note_add), never a replacement.
    allowed = ("status", "escalated", "escalation_reason", "contact_email", "assigned_to", "handled_by")
    wanted = {name: changes[name] for name in allowed if name in changes}
    conversation_transition(conversation=conversation, changes=wanted, actor=actor, actor_label=actor_label)
    if note:
        ticket_note_add(conversation=conversation, author=actor, text=note, author_label=actor_label)
    return conversation


def _escalation(*, reason: str, detail: str, now: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "escalated": True,
        "status": Status.NEEDS_REVIEW,
        "escalation_reason": reason,
        "escalation_detail": detail[:500],
        "escalated_at": now,
        "closed_at": None,
    }
    if reason in HANDOFF_REASONS:
        # The customer now waits for a person: the bot's handoff reply is its last, so it never talks
        # over the staff member who picks the ticket up. Other escalations only flag the ticket for
        # review and the bot (or its offline responder) keeps answering.
        changes["handled_by"] = HandledBy.HUMAN
    return changes


def _awaits_review(conversation: Conversation) -> bool:
    return conversation.escalated and conversation.status == Status.NEEDS_REVIEW


#: Between two notes in Conversation.notes, the joined copy of the timeline the API returns as `notes`.
NOTES_SEPARATOR = "\n\n"


def ticket_note_add(
    *, conversation: Conversation, author: Any, text: str, author_label: str | None = None
) -> TicketNote:
    """Append a staff note to the ticket's timeline, with a history event and the API's joined copy.

    The joined copy (Conversation.notes) is extended with a compare-and-set on its current value, so
    concurrent notes each land once and none overwrites another.
    """
    label = author_label or _user_label(author) or SYSTEM
    with transaction.atomic():
        note = TicketNote.objects.create(conversation=conversation, author=author, author_label=label, text=text)
        TicketEvent.objects.create(
            conversation=conversation,
            actor=author,
            actor_label=label,
            field=EventField.NOTES,
            old_value="",
            new_value=text,
        )
    for _attempt in range(50):
        current = Conversation.objects.filter(pk=conversation.pk).values_list("notes", flat=True).get()
        joined = f"{current}{NOTES_SEPARATOR}{text}" if current else text
        if Conversation.objects.filter(pk=conversation.pk, notes=current).update(
            notes=joined, updated_at=timezone.now()
        ):
            conversation.notes = joined
            return note
    raise RuntimeError(f"Conversation {conversation.pk} kept changing under a note; the note is kept.")


def conversation_escalate(
    *,
    conversation: Conversation,
    reason: str,
    detail: str = "",
    actor: Any = None,
    actor_label: str = WIDGET,
) -> bool:
    """Flag a conversation for human review. Returns False when it was already waiting for review."""

    def escalation(current: Conversation) -> dict[str, Any] | None:
        return None if _awaits_review(current) else _escalation(reason=reason, detail=detail, now=timezone.now())

    return conversation_transition(conversation=conversation, changes=escalation, actor=actor, actor_label=actor_label)


def conversation_rate(
    *,
    conversation: Conversation,
    rating: str,
    message: Message | None = None,
    actor: Any = None,
    actor_label: str = WIDGET,
) -> Conversation:
    """Store the customer's thumbs up/down; a re-rate overwrites. A changed rating writes a ticket event.

    A new thumbs-down on a conversation nobody is working on (auto-resolved or closed) flags it for
    review with the reason `thumbs_down`, in the same write as the rating.
    """
    if rating not in Rating.values:
        raise ValueError(f"rating must be one of {', '.join(Rating.values)}, got {rating!r}")
    if message is not None and (message.conversation_id != conversation.pk or message.role != Role.ASSISTANT):
        raise ValueError("Only an assistant reply of this conversation can be rated.")

    def rated(current: Conversation) -> dict[str, Any]:
        now = timezone.now()
        wanted: dict[str, Any] = {"rating": rating, "rated_at": now, "rated_message": message}
        if rating == Rating.DOWN and current.rating != Rating.DOWN and current.status not in QUEUE_STATUSES:
            wanted |= _escalation(reason=EscalationReason.THUMBS_DOWN, detail="", now=now)
        return wanted

    conversation_transition(conversation=conversation, changes=rated, actor=actor, actor_label=actor_label)
    return conversation


def conversation_contact_set(
    *, conversation: Conversation, email: str, actor: Any = None, actor_label: str = WIDGET
) -> Conversation:
    """Record where the customer wants the human reply (the widget's form after an escalation)."""
    conversation_transition(
        conversation=conversation, changes={"contact_email": email.strip()}, actor=actor, actor_label=actor_label
    )
    return conversation


def conversation_outcome_refresh(*, conversation: Conversation, actor_label: str = SYSTEM) -> bool:
    """Recompute the outcome (support.outcomes) after its inputs changed or its window ran out; True if it moved.

    One read decides: a transition that committed before it is in it, and one that commits after it sees
    the caller's new inputs (its compare-and-set guards them), so an unchanged outcome needs no write."""
    conversation.refresh_from_db(fields=[*STATE_FIELDS, *GUARDED_TOO])
    if not _outcome_change(conversation, {}, now=timezone.now()):
        return False
    return conversation_transition(conversation=conversation, changes={}, actor_label=actor_label)


def conversation_outcome_follow(*, conversation: Conversation, actor_label: str = SYSTEM) -> bool:
    """conversation_outcome_refresh without its read, for a caller whose copy is the state its own guarded
    update of the outcome's inputs wrote on (conversation_counters_add): the guard proved the state fields
    current, and the inputs it did not write only ever move on (flags turn on, the latest turn moves
    forward) under writers that follow their own changes. True if the outcome moved."""
    if not _outcome_change(conversation, {}, now=timezone.now()):
        return False
    return conversation_transition(conversation=conversation, changes={}, actor_label=actor_label)


def conversations_outcome_settle(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Settle open conversations whose resolution window is over (assumed, or abandoned); returns how many moved.

    Reads on the (outcome, last_turn_at) index; each one moves through conversation_transition."""
    before = (now or timezone.now()) - outcomes.resolution_window()
    due = Conversation.objects.filter(outcome=Outcome.OPEN, last_turn_at__lte=before).order_by("last_turn_at")
    moved = 0
    for conversation in due[:limit]:
        try:
            moved += conversation_outcome_refresh(conversation=conversation)
        except ConversationConflict:
            logger.info("conversation %s kept changing; its outcome settles on the next run", conversation.pk)
    return moved
