"""Turns of conversations, and the usage figures summed over them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum

from support import rollups
from support.models import Conversation, HandledBy, Message, Role

TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
#: The figures of a usage row, in report order: cost_report's columns and DailyUsageRollup's counters.
USAGE_COLUMNS = ("conversations", "messages", *TOKEN_KINDS, "cost_micros")
#: DailyUsageRollup's counters of the widget-reported share (MessageOrigin.CLIENT), in the same order.
CLIENT_COLUMNS = tuple(f"client_{name}" for name in USAGE_COLUMNS)


def usage_model_filter(key: str) -> Q:
    """The turns counted in usage row `key` (rollups.usage_model_key), as a message filter."""
    if key == rollups.KNOWLEDGE_BASE:
        return Q(model="", role=Role.ASSISTANT)
    if not key:
        return Q(model="") & ~Q(role=Role.ASSISTANT)
    return Q(model=key)


def message_usage_sums() -> dict[str, Any]:
    """Aggregates over messages: turns (n), tokens by kind (inp, out, cr, cw) and cost in micro-USD.

    Shared by the cost report, the rollup rebuild and the counter repair so they always agree.
    """
    return {
        "n": Count("pk"),
        "inp": Sum("input_tokens"),
        "out": Sum("output_tokens"),
        "cr": Sum("cache_read_tokens"),
        "cw": Sum("cache_write_tokens"),
        "cost": Sum("cost_micros"),
    }


def assistant_message_get(*, conversation: Conversation, message_id: object) -> Message | None:
    """One assistant reply of `conversation`, or None (bad id, other conversation, or a user turn)."""
    try:
        pk = Message._meta.pk.to_python(message_id)
    except (ValidationError, ValueError, TypeError):
        return None
    return Message.objects.filter(pk=pk, conversation=conversation, role=Role.ASSISTANT).first()


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return Message.objects.filter(conversation=conversation).select_related("author").order_by("created_at", "pk")


def message_pk(message_id: object) -> Any:
    """A turn's id in the database's own type (int, ObjectId), or None when it is malformed; no read."""
    try:
        return Message._meta.pk.to_python(message_id)
    except (ValidationError, ValueError, TypeError):
        return None


def message_get(*, conversation: Conversation, message_id: object) -> Message | None:
    """One turn of `conversation`, or None (bad id, or a turn of another conversation)."""
    pk = message_pk(message_id)
    if pk is None:
        return None
    return Message.objects.filter(pk=pk, conversation=conversation).first()


def message_list_after(*, conversation: Conversation, after: Message | None, limit: int) -> list[Message]:
    """The first `limit` turns after `after` (all from the start when None), oldest first, with their
    authors. Turns stored together share created_at, so the order (created_at, pk) breaks the tie."""
    turns = Message.objects.filter(conversation=conversation).select_related("author").order_by("created_at", "pk")
    if after is None:
        return list(turns[:limit])
    # Two flat filters, not one with OR: an index serves each on any MongoDB, where SecantusDB plans none for
    # an $or and scanned every stored turn (116 ms of a 125 ms poll at 6,000 turns).
    same_moment = list(turns.filter(created_at=after.created_at, pk__gt=after.pk)[:limit])
    if len(same_moment) == limit:
        return same_moment
    return same_moment + list(turns.filter(created_at__gt=after.created_at)[: limit - len(same_moment)])


def message_latest_id(*, conversation: Conversation) -> Any:
    """The newest turn's id (None before the first): one indexed read, enough to tell a poll nothing is new."""
    return (
        Message.objects.filter(conversation=conversation)
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )


def conversation_agent(*, conversation: Conversation) -> Any:
    """The person answering the customer while a person owns the conversation (handled_by=human): the
    assignee, else the author of the latest staff reply; None while the bot answers."""
    if conversation.handled_by != HandledBy.HUMAN:
        return None
    if conversation.assigned_to_id is not None:
        return conversation.assigned_to
    latest = (
        Message.objects.filter(conversation=conversation, role=Role.AGENT, author__isnull=False)
        .select_related("author")
        .order_by("-created_at", "-pk")
        .first()
    )
    return None if latest is None else latest.author


def message_recent(*, conversation: Conversation, limit: int) -> list[Message]:
    """The last `limit` turns of a conversation, oldest first (one query, newest `limit` rows)."""
    newest_first = (
        Message.objects.filter(conversation=conversation).select_related("author").order_by("-created_at", "-pk")
    )[:limit]
    return list(reversed(list(newest_first)))


def message_reply_to(*, message: Message) -> Message | None:
    """The bot's reply to a customer's turn: the conversation's next message, when the bot wrote it."""
    following = (
        Message.objects.filter(conversation_id=message.conversation_id, created_at__gte=message.created_at)
        .exclude(pk=message.pk)
        .order_by("created_at", "pk")
        .first()
    )
    return following if following is not None and following.role == Role.ASSISTANT else None


def messages_by_conversation(*, conversation_ids: list[Any]) -> dict[Any, list[Message]]:
    """All messages of many conversations, grouped in order, in two queries whatever their number: the turns,
    then their authors by id (no prefetch_related on MongoDB, and no join: there select_related is a $lookup
    run for every turn, which cost the ticket page far more than the turns themselves).

    The turns are put in order here, not by the database: they are all in memory anyway (a page's 500 sort in
    well under a millisecond), while a sort on (created_at, pk) across many conversations is a blocking sort
    on any MongoDB, which the conversation index cannot give (SecantusDB: 17 of a page's 53 ms)."""
    grouped: dict[Any, list[Message]] = {pk: [] for pk in conversation_ids}
    if not conversation_ids:
        return grouped
    turns = list(Message.objects.filter(conversation_id__in=conversation_ids).order_by())
    turns.sort(key=lambda turn: (turn.created_at, turn.pk))
    authors = users_by_pk(turn.author_id for turn in turns)
    for turn in turns:
        author = authors.get(turn.author_id)
        if author is not None:
            turn.author = author
        grouped[turn.conversation_id].append(turn)
    return grouped


def conversation_messages_attach(conversations: list[Conversation]) -> None:
    """Give each conversation its turns, oldest first, with their authors, as `loaded_messages`: one
    conversation's in one query (message_list), a page's in two whatever its size (messages_by_conversation)."""
    if len(conversations) == 1:
        conversations[0].loaded_messages = list(message_list(conversation=conversations[0]))
        return
    grouped = messages_by_conversation(conversation_ids=[conversation.pk for conversation in conversations])
    for conversation in conversations:
        conversation.loaded_messages = grouped[conversation.pk]


def users_by_pk(pks: Iterable[Any]) -> dict[Any, Any]:
    """The users with these ids, by id, in one read on the primary key (none when no id is given)."""
    wanted = {pk for pk in pks if pk is not None}
    return get_user_model().objects.in_bulk(list(wanted)) if wanted else {}


def conversation_ids_with(message_filter: Q) -> list[Any]:
    """The conversations with at least one message matching `message_filter`."""
    # Materialised rather than a subquery: the MongoDB backend cannot nest a query in `__in`.
    return list(Message.objects.filter(message_filter).values_list("conversation_id", flat=True).distinct())
