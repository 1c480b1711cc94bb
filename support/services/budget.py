"""The daily Claude budget (SUPPORT_DAILY_BUDGET_USD), held under concurrency.

Before the chat proxy calls Claude it reserves the call's worst case (the request's size as tokens, bounded
by its UTF-8 bytes, at the dearest input rate, plus SUPPORT_CLAUDE_MAX_TOKENS of output) in today's
DailySpend row with one conditional update: the check and the increment are one statement, on SQLite and
as a single-document update on MongoDB, so parallel chats cannot all pass a check of a stale total. After
the reply is stored the reservation is settled to the turn's real cost (zero when Claude failed).

Only the chat proxy reserves and settles: usage a client logs through POST messages never spends the
budget. Writes here follow the services conventions (keyword-only, `<entity>_<action>`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from support import selectors
from support.models import MICROS_PER_USD, DailySpend
from support.pricing import TOKENS_PER_MTOK
from support.services.notifications import BUDGET_THRESHOLD, notification_publish
from support.services.prices import price_resolve

# Named as before the move to services/, so logging configuration and log searches keep working.
logger = logging.getLogger(__name__)

#: Staff are told (dashboard banner, one warning log line a day) once this share of the cap is spent.
WARN_AT = 0.8
#: Tokens the API adds around a request (the tool-use preamble, role markers), on top of its text.
REQUEST_OVERHEAD_TOKENS = 1000


@dataclass(frozen=True)
class BudgetWarning:
    """For the dashboard banner: today's spend once it passed WARN_AT of the cap."""

    percent: int
    spent_usd: str
    cap_usd: str


@dataclass(frozen=True)
class Reservation:
    day: date
    micros: int


def budget_cap_micros() -> int:
    """SUPPORT_DAILY_BUDGET_USD in micro-USD; 0 means no cap."""
    cap = settings.SUPPORT_DAILY_BUDGET_USD
    return int(cap * MICROS_PER_USD) if cap > 0 else 0


def request_token_bound(*, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """An upper bound on a request's input tokens: every tokenizer yields at most one token per byte."""
    text = json.dumps([system, tools, messages], ensure_ascii=False)
    return len(text.encode("utf-8")) + REQUEST_OVERHEAD_TOKENS


def call_worst_case_micros(*, model: str, input_tokens: int) -> int:
    """What one call can cost at most: all input at the dearest input rate, all of max_tokens as output."""
    price, _ = price_resolve(model=model, at=timezone.now())
    if price is None:
        return 0
    input_rate = max(
        price.input_per_mtok_micros, price.cache_write_5m_per_mtok_micros, price.cache_write_1h_per_mtok_micros
    )
    numerator = input_tokens * input_rate + settings.SUPPORT_CLAUDE_MAX_TOKENS * price.output_per_mtok_micros
    return -(-numerator // TOKENS_PER_MTOK)  # rounded up


def daily_spend_reserve(*, micros: int) -> Reservation | None:
    """Reserve `micros` of today's budget; None when that would pass the cap. No cap: nothing is written."""
    day = timezone.now().date()
    cap = budget_cap_micros()
    if not cap:
        return Reservation(day=day, micros=0)
    for attempt in range(2):
        # spent + reserved + micros <= cap, checked and applied in one statement.
        taken = DailySpend.objects.filter(day=day, spent_micros__lte=cap - micros - F("reserved_micros")).update(
            reserved_micros=F("reserved_micros") + micros
        )
        if taken:
            return Reservation(day=day, micros=micros)
        if attempt == 0:
            # No row yet, or the cap refused: make sure the day's row exists and ask once more. (A concurrent
            # first call may create it between our update and this check, so "it exists" proves nothing.)
            _daily_spend_ensure(day=day)
    return None


def _daily_spend_ensure(*, day: date) -> None:
    """Create the day's row unless it exists (another writer may create it at the same moment)."""
    if DailySpend.objects.filter(day=day).exists():
        return
    try:
        with transaction.atomic():  # a savepoint: a lost race leaves an outer transaction usable
            DailySpend.objects.create(day=day)
    except IntegrityError:
        pass


def daily_spend_settle(*, reservation: Reservation, micros: int) -> None:
    """Replace the reservation with the call's real cost (0 releases it); warn once a day past WARN_AT."""
    cap = budget_cap_micros()
    if not cap or not reservation.micros:
        return
    DailySpend.objects.filter(day=reservation.day).update(
        reserved_micros=F("reserved_micros") - reservation.micros, spent_micros=F("spent_micros") + micros
    )
    # One conditional update: of all the workers settling past the threshold, exactly one logs.
    if DailySpend.objects.filter(day=reservation.day, warned=False, spent_micros__gte=int(cap * WARN_AT)).update(
        warned=True
    ):
        logger.warning(
            "%d%% of today's Claude budget (SUPPORT_DAILY_BUDGET_USD=%s) is spent; past the cap the "
            "knowledge base answers instead of Claude.",
            int(WARN_AT * 100),
            settings.SUPPORT_DAILY_BUDGET_USD,
        )
        warning = budget_warning()
        notification_publish(
            event=BUDGET_THRESHOLD,
            conversation=None,
            data={"day": reservation.day.isoformat(), "threshold_percent": int(WARN_AT * 100)}
            | (
                {}
                if warning is None
                else {"percent": warning.percent, "spent_usd": warning.spent_usd, "cap_usd": warning.cap_usd}
            ),
        )


def budget_warning() -> BudgetWarning | None:
    """Today's spend for the staff banner, once WARN_AT of the cap is spent; None below it or without a cap."""
    cap = budget_cap_micros()
    row = selectors.daily_spend_today() if cap else None
    if row is None or row.spent_micros < cap * WARN_AT:
        return None
    return BudgetWarning(
        percent=min(row.spent_micros * 100 // cap, 100),
        spent_usd=f"{row.spent_micros / MICROS_PER_USD:.2f}",
        cap_usd=f"{cap / MICROS_PER_USD:.2f}",
    )
