"""The cost report (manage.py cost_report): read from conversations and messages, not the rollups."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Count, QuerySet, Sum

from support import outcomes, rollups
from support.models import Conversation, Message, MessageOrigin
from support.pricing import micros_to_usd
from support.selectors.dates import Window, utc_midnight
from support.selectors.messages import TOKEN_KINDS, message_usage_sums

COST_REPORT_GROUPS = ("day", "model", "source", "status", "outcome", "business", "audience")
#: How cost_report names conversations without a business or audience in those groups.
NO_BUSINESS = "(no business)"
NO_AUDIENCE = "(no audience)"
#: cost_report's extra columns: the widget-reported share of each row (already in its totals).
CLIENT_REPORT_COLUMNS = ("client_messages", "client_cost_micros")
#: cost_report's name for customer turns and staff replies, logged without a model (no Claude usage of their own).
NO_MODEL = "(customer and staff turns, no model)"

_CONVERSATION_TOKENS = (
    "total_input_tokens",
    "total_output_tokens",
    "total_cache_read_tokens",
    "total_cache_write_tokens",
)
#: What each batch reads of a conversation (the report's row tuples, in this order).
_CONVERSATION_FIELDS = (
    "pk",
    "created_at",
    "source",
    "status",
    "outcome",
    "business_id",
    "audience",
    "message_count",
    *_CONVERSATION_TOKENS,
    "cost_micros",
)


@dataclass
class CostRow:
    key: str
    conversations: int = 0
    messages: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int = 0
    client_messages: int = 0
    client_cost_micros: int = 0

    def add(self, *, conversations: int, messages: int, tokens: tuple[int, ...], cost_micros: int) -> None:
        self.conversations += conversations
        self.messages += messages
        for name, value in zip(TOKEN_KINDS, tokens, strict=True):
            setattr(self, name, getattr(self, name) + (value or 0))
        self.cost_micros += cost_micros or 0

    @property
    def cost_usd(self) -> float:
        return micros_to_usd(self.cost_micros)


@dataclass
class CostReport:
    window: Window
    by: str
    rows: list[CostRow]
    total: CostRow
    #: Conversations and cost by outcome (support.outcomes), whatever the grouping: the resolution figures.
    by_outcome: dict[str, CostRow] = field(default_factory=dict)

    def outcome_figures(self) -> dict[str, Any]:
        """The resolution rate and cost per resolution, as GET analytics reports them."""
        return outcomes.resolution_figures(
            counts={key: row.conversations for key, row in self.by_outcome.items()},
            costs={key: row.cost_micros for key, row in self.by_outcome.items()},
            total_cost=self.total.cost_micros,
        )


def cost_report(
    *,
    window: Window,
    by: str,
    batch_size: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    business_id: str = "",
    audience: str = "",
) -> CostReport:
    """Conversations, turns, tokens by kind and cost of the conversations started in `window`, grouped.

    Read from the conversations and messages themselves (not the rollups), in primary-key batches, so
    it doubles as an independent check of the dashboard's figures. `progress(done, total)` is called
    after each batch of conversations. `business_id` / `audience` keep one venue's or audience's.
    """
    if by not in COST_REPORT_GROUPS:
        raise ValueError(f"by must be one of {', '.join(COST_REPORT_GROUPS)}")
    venue = {name: value for name, value in (("business_id", business_id), ("audience", audience)) if value}
    conversations = Conversation.objects.filter(
        created_at__gte=utc_midnight(window.date_from),
        created_at__lt=utc_midnight(window.date_to + timedelta(days=1)),
        **venue,
    )
    total_count = conversations.count()
    groups: dict[str, CostRow] = {}
    if by == "day":
        groups = {day.isoformat(): CostRow(day.isoformat()) for day in window.each_day()}
    grand = CostRow("total")
    by_outcome: dict[str, CostRow] = {}
    done = 0
    for rows in _batches(conversations, batch_size=batch_size):
        _add_conversations(rows, by=by, groups=groups, grand=grand)
        _add_conversations(rows, by="outcome", groups=by_outcome, grand=CostRow("unused"))
        _cost_report_client_share(rows, by=by, groups=groups, grand=grand)
        if by == "model":
            _cost_rows_by_model(groups, conversation_ids=[row[0] for row in rows])
        done += len(rows)
        if progress is not None:
            progress(done, total_count)
    return CostReport(
        window=window, by=by, rows=[groups[key] for key in sorted(groups)], total=grand, by_outcome=by_outcome
    )


def _batches(conversations: QuerySet[Conversation], *, batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The conversations' report fields, in primary-key order, `batch_size` rows at a time."""
    last = None
    while True:
        page = conversations if last is None else conversations.filter(pk__gt=last)
        rows = list(page.order_by("pk").values_list(*_CONVERSATION_FIELDS)[:batch_size])
        if not rows:
            return
        last = rows[-1][0]
        yield rows


def _add_conversations(rows: list[tuple[Any, ...]], *, by: str, groups: dict[str, CostRow], grand: CostRow) -> None:
    """Add one batch of conversations to the total and (unless by model: see _cost_rows_by_model) their rows."""
    for _pk, created_at, source, status, outcome, business_id, audience, message_count, *tokens, cost in rows:
        grand.add(conversations=1, messages=message_count, tokens=tuple(tokens), cost_micros=cost)
        if by == "model":
            continue
        key = _group_key(
            by,
            created_at=created_at,
            source=source,
            status=status,
            outcome=outcome,
            business=business_id,
            audience=audience,
        )
        groups.setdefault(key, CostRow(key)).add(
            conversations=1, messages=message_count, tokens=tuple(tokens), cost_micros=cost
        )


def _cost_rows_by_model(groups: dict[str, CostRow], *, conversation_ids: list[Any]) -> None:
    """Add one batch of conversations' turns to the per-model rows (rollups.usage_model_key names them)."""
    per_model: Iterable[Mapping[str, Any]] = (
        Message.objects.filter(conversation_id__in=conversation_ids)
        .values("conversation_id", "model", "role")
        .annotate(**message_usage_sums())
    )
    counted: set[tuple[Any, str]] = set()
    for row in per_model:
        key = rollups.usage_model_key(row["model"], row["role"]) or NO_MODEL
        first = (row["conversation_id"], key) not in counted
        counted.add((row["conversation_id"], key))
        groups.setdefault(key, CostRow(key)).add(
            conversations=int(first),
            messages=row["n"],
            tokens=(row["inp"], row["out"], row["cr"], row["cw"]),
            cost_micros=row["cost"],
        )


def _cost_report_client_share(
    rows: list[tuple[Any, ...]], *, by: str, groups: dict[str, CostRow], grand: CostRow
) -> None:
    """Add the widget-reported turns of one batch of conversations to their rows (one query)."""
    owners = {row[0]: row for row in rows}
    reported = (
        Message.objects.filter(conversation_id__in=list(owners), origin=MessageOrigin.CLIENT)
        .values("conversation_id", "model", "role")
        .annotate(n=Count("pk"), cost=Sum("cost_micros"))
    )
    for row in reported:
        _pk, created_at, source, status, outcome, business_id, audience, *_rest = owners[row["conversation_id"]]
        if by == "model":
            key = rollups.usage_model_key(row["model"], row["role"]) or NO_MODEL
        else:
            key = _group_key(
                by,
                created_at=created_at,
                source=source,
                status=status,
                outcome=outcome,
                business=business_id,
                audience=audience,
            )
        for target in (grand, groups.setdefault(key, CostRow(key))):
            target.client_messages += row["n"] or 0
            target.client_cost_micros += row["cost"] or 0


def _group_key(
    by: str, *, created_at: Any, source: str, status: str, outcome: str, business: str, audience: str
) -> str:
    """The row a conversation counts in, for every group but the model (whose rows are per turn)."""
    return {
        "day": lambda: rollups.utc_day(created_at).isoformat(),
        "source": lambda: source,
        "status": lambda: status,
        "outcome": lambda: outcome,
        "business": lambda: business or NO_BUSINESS,
        "audience": lambda: audience or NO_AUDIENCE,
    }[by]()
