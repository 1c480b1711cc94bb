"""Canned replies for the reply composer's picker."""

from __future__ import annotations

from django.db.models import QuerySet

from support.models import CannedReply


def canned_reply_list_active() -> QuerySet[CannedReply]:
    """Active canned replies by title (pk breaks ties, so the picker's order is stable)."""
    return CannedReply.objects.filter(is_active=True).order_by("title", "pk")
