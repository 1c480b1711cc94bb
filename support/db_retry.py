"""Writes that must land although the database is briefly locked or away (the chat reply after Claude answered)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from support.db import DATABASE_ERRORS

logger = logging.getLogger(__name__)


def db_retry(action: Callable[[], Any], *, deadline: float, what: str) -> Any:
    """Run a write, retrying with backoff while the database is locked or away, until `deadline` (monotonic)."""
    delay = 0.05
    while True:
        try:
            return action()
        except DATABASE_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("%s failed, retrying in %.2f s: %s", what, delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
