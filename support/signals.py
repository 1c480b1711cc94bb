from __future__ import annotations

from typing import Any


def seed_default_prices(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Give a fresh install the published Claude prices; never touches rows staff already edited."""
    from support.services import model_price_ensure_defaults

    model_price_ensure_defaults(using=using)
