"""Moved to support.services.budget (a write); kept so `from support import budget` keeps working."""

from __future__ import annotations

from support.services.budget import (
    REQUEST_OVERHEAD_TOKENS,
    WARN_AT,
    BudgetWarning,
    Reservation,
    budget_cap_micros,
    budget_warning,
    call_worst_case_micros,
    daily_spend_reserve,
    daily_spend_settle,
    request_token_bound,
)

__all__ = [
    "REQUEST_OVERHEAD_TOKENS",
    "WARN_AT",
    "BudgetWarning",
    "Reservation",
    "budget_cap_micros",
    "budget_warning",
    "call_worst_case_micros",
    "daily_spend_reserve",
    "daily_spend_settle",
    "request_token_bound",
]
