"""Token counts without a tokenizer round trip: an estimate for partial replies, a bound for requests."""

from __future__ import annotations

import math

#: Characters per token, for bounding history without a tokenizer round trip.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def token_bound(text: str) -> int:
    """At most this many tokens, whatever the text: no tokenizer makes more tokens than UTF-8 bytes (an
    emoji is one character but four bytes, and can be several tokens)."""
    return len(text.encode("utf-8"))
