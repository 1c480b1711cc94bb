"""Turning token usage into micro-USD with a price row. Pure functions: no database access."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from support.models import ModelPrice

TOKENS_PER_MTOK = 1_000_000

#: Published Claude prices (USD per million tokens: input, output, 5-minute cache write,
#: 1-hour cache write, cache read), seeded into ModelPrice on a fresh install.
DEFAULT_PRICES_USD: dict[str, tuple[str, str, str, str, str]] = {
    "claude-haiku-4-5": ("1", "5", "1.25", "2", "0.10"),
    "claude-sonnet-4-5": ("3", "15", "3.75", "6", "0.30"),
    "claude-opus-4-5": ("5", "25", "6.25", "10", "0.50"),
}
DEFAULT_PRICES_EFFECTIVE_FROM = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ModelLimits:
    """What one Claude call can really use: prompt tokens (context window) and reply tokens (max output)."""

    context_window: int
    max_output_tokens: int


#: Per-turn limits of the models we know, from Anthropic's model pages (platform.claude.com/docs/models/...,
#: "Context window" and "Max output"; e.g. models/haiku-4-5/overview: "Context window: 200K tokens · Max
#: output: 64K tokens"; sonnet-4-5 and opus-4-5: the same; sonnet-5 and opus-5: 1M and 128K). Usage the
#: widget reports beyond them cannot have happened (SUPPORT_CLIENT_LOGGING=seed refuses it).
MODEL_LIMITS: dict[str, ModelLimits] = {
    "claude-haiku-4-5": ModelLimits(200_000, 64_000),
    "claude-sonnet-4-5": ModelLimits(200_000, 64_000),
    "claude-opus-4-5": ModelLimits(200_000, 64_000),
    "claude-sonnet-5": ModelLimits(1_000_000, 128_000),
    "claude-opus-5": ModelLimits(1_000_000, 128_000),
}
#: Any other model: the smallest limits of a current model, so an invented name buys no headroom.
DEFAULT_MODEL_LIMITS = ModelLimits(200_000, 64_000)
_DATED_MODEL = re.compile(r"-\d{8}$")


def model_limits(model: str) -> ModelLimits:
    """The limits of `model`; a dated id (claude-haiku-4-5-20251001) has its alias's limits."""
    return MODEL_LIMITS.get(_DATED_MODEL.sub("", model.strip()), DEFAULT_MODEL_LIMITS)


def usage_beyond_limits(
    *, model: str, input_tokens: int, output_tokens: int, cache_read_tokens: int, cache_write_tokens: int
) -> tuple[str, str] | None:
    """(field, message) for the first figure one turn of `model` could not have used, else None."""
    limits = model_limits(model)
    window, most = limits.context_window, limits.max_output_tokens
    for name, value in (
        ("input_tokens", input_tokens),
        ("cache_read_tokens", cache_read_tokens),
        ("cache_write_tokens", cache_write_tokens),
    ):
        if value > window:
            return name, f"At most {window} tokens: the context window of {model}."
    if input_tokens + cache_read_tokens + cache_write_tokens > window:
        return "input_tokens", (
            f"input_tokens, cache_read_tokens and cache_write_tokens together exceed {window}, "
            f"the context window of {model}."
        )
    if output_tokens > most:
        return "output_tokens", f"At most {most} tokens: the longest reply {model} can write."
    return None


def usd_to_micros(amount: str) -> int:
    whole, _, fraction = amount.partition(".")
    fraction = (fraction + "000000")[:6]
    return int(whole or "0") * 1_000_000 + int(fraction)


def micros_to_usd(micros: int) -> float:
    """Float for JSON; six decimals keep every micro-USD (0.00057 stays 0.00057)."""
    return round(micros / 1_000_000, 6)


def usd_per_mtok_label(micros: int) -> str:
    """A per-million-token price as staff read it: 1000000 -> "$1.00 / MTok", 100000 -> "$0.10 / MTok"."""
    dollars = f"{micros / 1_000_000:.6f}".rstrip("0")
    whole, _, cents = dollars.partition(".")
    return f"${whole}.{cents.ljust(2, '0')} / MTok"


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0


PRICE_FIELDS = (
    "input_per_mtok_micros",
    "output_per_mtok_micros",
    "cache_write_5m_per_mtok_micros",
    "cache_write_1h_per_mtok_micros",
    "cache_read_per_mtok_micros",
)


def price_usable(price: ModelPrice) -> bool:
    """False for a row with a negative price (written before the model validated them): it would make
    every turn's cost negative, which the cost columns refuse, so pricing skips it."""
    return all(getattr(price, name) >= 0 for name in PRICE_FIELDS)


def cost_micros(price: ModelPrice | None, usage: Usage) -> int:
    """Cost of one turn, rounded half-up to a whole micro-USD once, at the end."""
    if price is None:
        return 0
    write_5m = max(usage.cache_write_tokens - usage.cache_write_1h_tokens, 0)
    numerator = (
        usage.input_tokens * price.input_per_mtok_micros
        + usage.output_tokens * price.output_per_mtok_micros
        + write_5m * price.cache_write_5m_per_mtok_micros
        + usage.cache_write_1h_tokens * price.cache_write_1h_per_mtok_micros
        + usage.cache_read_tokens * price.cache_read_per_mtok_micros
    )
    return (numerator + TOKENS_PER_MTOK // 2) // TOKENS_PER_MTOK
