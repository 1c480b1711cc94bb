"""Typed readers for environment variables.

Each helper fails loudly (ImproperlyConfigured naming the variable) on a value
it cannot parse, so a typo in production config stops start-up instead of
silently falling back to a default.
"""

from __future__ import annotations

import os
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    """The variable's value, or None when it is unset OR empty: `KEY=` in a .env means "use the default"."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {number}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {number}")
    return number


def env_decimal(name: str, default: str) -> Decimal:
    value = _raw(name)
    try:
        number = Decimal(default if value is None or value == "" else value)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a decimal number, got {value!r}") from None
    if number < 0:
        raise ImproperlyConfigured(f"{name} must not be negative, got {number}")
    return number


def env_list(name: str, default: list[str] | None = None, *, sep: str = ",") -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(sep) if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name)
    if value is None or value == "":
        return default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def env_hex_colour(name: str, default: str) -> str:
    """A CSS hex colour (#rgb or #rrggbb); anything else could smuggle CSS into the widget."""
    value = _raw(name)
    if value is None or value == "":
        return default
    if not _HEX_COLOUR.fullmatch(value):
        raise ImproperlyConfigured(f"{name} must be a hex colour like #0f766e, got {value!r}")
    return value.lower()


def env_business_hours(name: str, default: str = "") -> str:
    """A business-hours schedule (support.business_hours: 'Europe/London; Mon-Fri 09:00-17:30'), checked
    now so a typo stops start-up; returned as written, and parsed (cached) where it is used."""
    from support.business_hours import parse  # here: the parser is the app's, settings only check it

    value = _raw(name)
    if value is None:
        return default
    try:
        parse(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a valid schedule: {exc}; got {value!r}") from None
    return value


SKIP_DOTENV = "REZVO_SKIP_DOTENV"


def dotenv_skipped() -> bool:
    """True under pytest (and in every process a test run starts, via REZVO_SKIP_DOTENV, which
    tests/conftest.py sets): a developer's .env must never change what the tests see."""
    return "pytest" in sys.modules or env_bool(SKIP_DOTENV, default=False)


def load_dotenv(path: Path) -> None:
    """Read KEY=VALUE lines from `path` into os.environ without overriding real env vars."""
    if not path.is_file():
        return
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ImproperlyConfigured(f"{path}:{lineno}: expected KEY=VALUE")
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)
