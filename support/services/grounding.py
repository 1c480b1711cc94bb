"""The ungrounded-replies rollup (issue 14): conversations with at least one ungrounded reply, per day
the conversation started and source, so analytics count them in O(days)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import date
from typing import Any

from django.db import transaction

from support import rollups
from support.models import Conversation, DailyGroundingRollup, Message

REBUILD_BATCH = 1000


def grounding_rollups_rebuild(*, keep_days: Collection[date] = ()) -> int:
    """Recount the table from the messages (the ungrounded ones only, through their index); returns rows.
    The rows of `keep_days` (days conversations were deleted from) stay as they are, as in rollups_rebuild."""
    ungrounded = Message.objects.filter(is_ungrounded=True)
    ids: list[Any] = list(ungrounded.values_list("conversation_id", flat=True).distinct())
    counts: Counter[tuple[Any, str, str, str]] = Counter()
    for start in range(0, len(ids), REBUILD_BATCH):
        batch = Conversation.objects.filter(pk__in=ids[start : start + REBUILD_BATCH])
        for created_at, source, business_id, audience in batch.values_list(
            "created_at", "source", "business_id", "audience"
        ):
            counts[(rollups.utc_day(created_at), source, business_id, audience)] += 1
    keep = sorted(set(keep_days))
    rows = [
        DailyGroundingRollup(day=d, source=s, business_id=b, audience=a, ungrounded_conversations=n)
        for (d, s, b, a), n in counts.items()
        if d not in keep
    ]
    with transaction.atomic():
        DailyGroundingRollup.objects.exclude(day__in=keep).delete()
        DailyGroundingRollup.objects.bulk_create(rows)
    return len(rows)
