"""Reads for retention, erasure and export: whose conversations, which ones are old, what was deleted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet

from support.models import Conversation, ErasureRecord, EventField, Message, TicketEvent
from support.selectors.conversations import conversation_pk


def conversations_older_than(*, before: datetime) -> QuerySet[Conversation]:
    """Conversations started before `before` (the indexed created_at)."""
    return Conversation.objects.filter(created_at__lt=before)


def conversations_of_subject(
    *, user_id: str | None = None, email: str | None = None, conversation_id: str | None = None
) -> QuerySet[Conversation]:
    """A data subject's conversations, by exactly one of the site's user id, the contact email or one id.

    The email compares case-insensitively: people type their address in any case, and an erasure that
    missed "Ana@Example.com" would not be one. A malformed conversation id matches nothing.
    """
    given = [value for value in (user_id, email, conversation_id) if value is not None]
    if len(given) != 1 or not given[0].strip():
        raise ValueError("Give exactly one non-empty user id, email or conversation id.")
    if user_id is not None:
        return Conversation.objects.filter(user_id=user_id.strip())
    if email is not None:
        return Conversation.objects.filter(contact_email__iexact=email.strip())
    pk = conversation_pk(conversation_id)
    return Conversation.objects.none() if pk is None else Conversation.objects.filter(pk=pk)


def conversation_id_batches(
    queryset: QuerySet[Conversation], *, batch_size: int
) -> Iterator[list[tuple[Any, datetime]]]:
    """(pk, created_at) of the matched conversations, a batch at a time in primary-key order (keyset paging:
    a batch deleted in between does not shift the next one)."""
    last = None
    while True:
        page = queryset if last is None else queryset.filter(pk__gt=last)
        rows = list(page.order_by("pk").values_list("pk", "created_at")[:batch_size])
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def erasure_record_list() -> QuerySet[ErasureRecord]:
    return ErasureRecord.objects.order_by("-created_at", "-pk")


def deleted_days() -> set[date]:
    """The UTC days some deleted conversations started on: their rollups can no longer be recomputed."""
    days: set[date] = set()
    for listed in ErasureRecord.objects.values_list("days", flat=True):
        days.update(date.fromisoformat(day) for day in listed or ())
    return days


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _conversation_export(conversation: Conversation) -> dict[str, Any]:
    messages = Message.objects.filter(conversation_id=conversation.pk).order_by("created_at", "pk")
    # A note's event carries the note's text: notes stay out of the export (conversations_export says why).
    events = (
        TicketEvent.objects.filter(conversation_id=conversation.pk)
        .exclude(field=EventField.NOTES)
        .order_by("created_at", "pk")
    )
    return {
        "id": str(conversation.pk),
        "created_at": _iso(conversation.created_at),
        "source": conversation.source,
        "page_url": conversation.page_url,
        "user_id": conversation.user_id,
        "business_id": conversation.business_id,
        "contact_email": conversation.contact_email,
        "status": conversation.status,
        "escalated": conversation.escalated,
        "closed_at": _iso(conversation.closed_at),
        "rating": {"value": conversation.rating, "rated_at": _iso(conversation.rated_at)}
        if conversation.rating
        else None,
        "messages": [
            {"role": m.role, "content": m.content, "created_at": _iso(m.created_at), "origin": m.origin}
            for m in messages
        ],
        "events": [
            {
                "field": e.field,
                "old_value": e.old_value,
                "new_value": e.new_value,
                "by": e.actor_label,
                "created_at": _iso(e.created_at),
            }
            for e in events
        ],
    }


def conversations_export(*, user_id: str | None = None, email: str | None = None) -> Iterator[dict[str, Any]]:
    """A data subject's conversations with their turns, ticket events and rating, oldest first, one at a time.

    Staff notes are left out: they are staff's working notes and may name other people, so a subject
    access request reviews them by hand (README "Data handling")."""
    matched = conversations_of_subject(user_id=user_id, email=email).order_by("created_at", "pk")
    for conversation in matched.iterator(chunk_size=100):
        yield _conversation_export(conversation)
