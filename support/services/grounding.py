"""The ungrounded-replies rollup (issue 14): conversations with at least one ungrounded reply, per day
the conversation started and source, so analytics count them in O(days)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from support import rollups
from support.models import Conversation, DailyGroundingRollup, Message
from support.services.rollups import _rollup_add

REBUILD_BATCH = 1000


def grounding_rollups_add(*, conversation: Conversation, messages: Sequence[Message]) -> None:
    """Count the conversation once, with its first stored ungrounded reply."""
    new = [m.pk for m in messages if m.is_ungrounded]
    if not new:
        return
    earlier = Message.objects.filter(conversation=conversation, is_ungrounded=True).exclude(pk__in=new).exists()
    if not earlier:
        key = {"day": rollups.utc_day(conversation.created_at), "source": conversation.source}
        _rollup_add(DailyGroundingRollup, key=key, ungrounded_conversations=1)


def grounding_rollups_rebuild() -> int:
    """Recount the table from the messages (the ungrounded ones only, through their index); returns rows."""
    ungrounded = Message.objects.filter(is_ungrounded=True)
    ids: list[Any] = list(ungrounded.values_list("conversation_id", flat=True).distinct())
    counts: Counter[tuple[Any, str]] = Counter()
    for start in range(0, len(ids), REBUILD_BATCH):
        batch = Conversation.objects.filter(pk__in=ids[start : start + REBUILD_BATCH])
        for created_at, source in batch.values_list("created_at", "source"):
            counts[(rollups.utc_day(created_at), source)] += 1
    with transaction.atomic():
        DailyGroundingRollup.objects.all().delete()
        DailyGroundingRollup.objects.bulk_create(
            [DailyGroundingRollup(day=d, source=s, ungrounded_conversations=n) for (d, s), n in counts.items()]
        )
    return len(counts)
