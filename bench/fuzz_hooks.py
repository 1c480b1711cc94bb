"""schemathesis hooks (SCHEMATHESIS_HOOKS=bench.fuzz_hooks) that give the fuzzer a persona.

FUZZ_PERSONA=staff: the staff token is sent by `-H`; half the generated conversation ids are
replaced by real ones so operations get past the 404 and into their validation and writes.
FUZZ_PERSONA=widget: every request carries one conversation's X-Conversation-Token and targets
that conversation, as the embedded widget does; staff operations must refuse it.
"""

from __future__ import annotations

import os
import sys
import zlib
from typing import Any

import schemathesis

# Hypothesis parses the source of the lambdas it describes with `ast`, from deep inside its draws. On
# CPython 3.11 an `ast` RecursionError there leaves the parser's depth count wrong, and the next parse fails
# with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905): a CI
# fuzz run lost an operation to it. More headroom keeps that parse from reaching the limit at all.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 4000))

PERSONA = os.environ.get("FUZZ_PERSONA", "staff")
REAL_IDS = [i for i in os.environ.get("FUZZ_CONVERSATION_IDS", "").split(",") if i]
WIDGET_ID = os.environ.get("FUZZ_WIDGET_CONVERSATION_ID", "")
WIDGET_TOKEN = os.environ.get("FUZZ_WIDGET_TOKEN", "")


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    if not path_parameters or "conversation_id" not in path_parameters:
        return path_parameters
    if PERSONA == "widget" and WIDGET_ID:
        return {**path_parameters, "conversation_id": WIDGET_ID}
    if REAL_IDS:
        # Deterministic for a given generated value, so a seed still reproduces the run.
        digest = zlib.crc32(repr(path_parameters["conversation_id"]).encode())
        if digest % 2:
            return {**path_parameters, "conversation_id": REAL_IDS[digest % len(REAL_IDS)]}
    return path_parameters


@schemathesis.hook
def map_headers(context: Any, headers: dict[str, Any] | None) -> dict[str, Any] | None:
    if PERSONA == "widget" and WIDGET_TOKEN:
        headers = dict(headers or {})
        headers["X-Conversation-Token"] = WIDGET_TOKEN
    elif headers and "X-Conversation-Token" in headers:
        # Staff need no conversation token; a generated one would only be ignored.
        headers = {k: v for k, v in headers.items() if k != "X-Conversation-Token"}
    return headers
