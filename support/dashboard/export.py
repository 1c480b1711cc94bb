"""The ticket list as CSV (what spreadsheets open), streamed row by row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from support.models import Conversation
from support.pricing import micros_to_usd

CSV_COLUMNS = (
    "id",
    "created_at",
    "source",
    "status",
    "escalated",
    "escalation_reason",
    "escalated_at",
    "closed_at",
    "assigned_to",
    "contact_email",
    "summary",
    "page_url",
    "messages",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "cost_usd",
    # issue 15, appended so the earlier columns keep their places.
    "business_id",
    "audience",
)


def _csv_safe(value: Any) -> str:
    """Cells a spreadsheet would run as a formula (=, +, -, @) are prefixed with a quote."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(queryset: QuerySet[Conversation]) -> Iterator[list[Any]]:
    """The header, then one row per ticket (read in chunks: an export can be every ticket there is)."""
    yield list(CSV_COLUMNS)
    for c in queryset.iterator(chunk_size=1000):
        yield [
            str(c.pk),
            c.created_at.isoformat(),
            c.source,
            c.status,
            "true" if c.escalated else "false",
            c.escalation_reason,
            c.escalated_at.isoformat() if c.escalated_at else "",
            c.closed_at.isoformat() if c.closed_at else "",
            _csv_safe(c.assigned_to.get_username() if c.assigned_to else ""),
            _csv_safe(c.contact_email),
            _csv_safe(c.summary),
            _csv_safe(c.page_url),
            c.message_count,
            c.total_input_tokens,
            c.total_output_tokens,
            c.total_cache_read_tokens,
            c.total_cache_write_tokens,
            c.cost_micros,
            f"{micros_to_usd(c.cost_micros):.6f}",
            _csv_safe(c.business_id),
            c.audience,
        ]


class Echo:
    """A file that hands back what is written to it, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value
