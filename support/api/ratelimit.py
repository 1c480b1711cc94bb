"""The API's 429: every rate limit names itself in the body (`reason`), so a client knows which one it hit.

No model imports here: support/api/stream_slots.py is imported by processes without Django set up."""

from __future__ import annotations

from rest_framework import exceptions


class RateLimited(exceptions.Throttled):
    """A 429 naming the limit hit: a throttle's scope, max_turns, streams_per_ip, server_busy."""

    def __init__(self, *, reason: str, wait: float | None = None, detail: str | None = None) -> None:
        super().__init__(wait=wait, detail=detail)
        self.reason = reason
