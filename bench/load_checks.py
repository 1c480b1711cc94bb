"""What bench/load.py checks after the load: integrity of what was stored, and queries per request.

Both run inside the leg's interpreter after django.setup(), against the database the server wrote.
"""

from __future__ import annotations

import collections
from typing import Any

from bench import harness

COUNTER_FIELDS = (
    "pk",
    "message_count",
    "total_input_tokens",
    "total_output_tokens",
    "total_cache_read_tokens",
    "total_cache_write_tokens",
    "cost_micros",
)


def _message_sums(ceiling_id: str) -> dict[str, list[int]]:
    """Per conversation: [turns, input, output, cache read, cache write tokens, cost] summed over its messages."""
    from support.models import Message

    sums: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    fields = ("conversation_id", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    for row in Message.objects.exclude(conversation_id=ceiling_id).values_list(*fields, "cost_micros"):
        totals = sums[str(row[0])]
        totals[0] += 1
        for i, value in enumerate(row[1:], start=1):
            totals[i] += value
    return sums


def _counter_drift(ceiling_id: str, problems: list[str]) -> int:
    """Conversations checked; each whose counters or cost differ from its messages' sums is a problem."""
    from support.models import Conversation

    sums = _message_sums(ceiling_id)
    drifted = 0
    conversations = 0
    for row in Conversation.objects.exclude(pk=ceiling_id).values_list(*COUNTER_FIELDS):
        conversations += 1
        if list(row[1:]) != sums.get(str(row[0]), [0] * 6):
            drifted += 1
            if drifted <= 5:
                problems.append(f"conversation {row[0]}: counters {list(row[1:])} != sums {sums.get(str(row[0]))}")
    if drifted:
        problems.append(f"{drifted} conversations' counters or cost differ from the sum of their messages")
    return conversations


def _record_ids(response: dict[str, Any]) -> list[str]:
    if "messages" in response:  # message logging: the stored body lists the turns
        return sorted(m["id"] for m in response["messages"])
    # the chat proxy: the done object names the customer's turn and the reply (none while a person handles it)
    return sorted(str(i) for i in (response.get("user_message_id"), response.get("message_id")) if i)


def _idempotency_problems(
    acks: dict[str, dict[str, list[str]]], ceiling_id: str, stored: set[str], problems: list[str]
) -> int:
    """Idempotency records checked: each completed, owning its own turns, as the client was acknowledged."""
    from support.models import IdempotencyRecord

    records = IdempotencyRecord.objects.exclude(conversation_id=ceiling_id).values_list(
        "conversation_id", "key", "response"
    )
    seen: dict[str, str] = {}
    record_count = 0
    for conversation_id, key, response in records:
        record_count += 1
        if response is None:
            problems.append(f"idempotency key {key} on {conversation_id} never completed")
            continue
        ids = _record_ids(response)
        for mid in ids:
            if mid in seen:
                problems.append(f"message {mid} claimed by keys {seen[mid]} and {key}")
            seen[mid] = key
        if acks.get(str(conversation_id), {}).get(key) not in (None, ids):
            problems.append(f"key {key}: client was acknowledged {acks[str(conversation_id)][key]}, stored {ids}")
    # Pairs logged without a key (acknowledged under a made-up "nokey:" key) have no record.
    unkeyed = {mid for keys in acks.values() for key, ids in keys.items() if key.startswith("nokey:") for mid in ids}
    if set(seen) != stored - unkeyed:
        problems.append(f"{len(stored - unkeyed - set(seen))} stored messages belong to no idempotency key")
    acked_keys = sum(1 for keys in acks.values() for key in keys if not key.startswith("nokey:"))
    if record_count != acked_keys:
        problems.append(f"{record_count} idempotency records for {acked_keys} acknowledged keys")
    return record_count


def integrity(acks: dict[str, dict[str, list[str]]], ceiling_id: str, ceiling_acked: int) -> dict[str, Any]:
    """Compare what the database holds with what the clients were told; every mismatch is a failure."""
    from support.models import Message

    problems: list[str] = []
    acked = {mid for keys in acks.values() for ids in keys.values() for mid in ids}
    stored = {str(pk) for pk in Message.objects.exclude(conversation_id=ceiling_id).values_list("pk", flat=True)}
    if stored != acked:
        problems.append(
            f"stored != acknowledged: {len(stored - acked)} stored but never acknowledged, "
            f"{len(acked - stored)} acknowledged but not stored"
        )
    conversations = _counter_drift(ceiling_id, problems)
    record_count = _idempotency_problems(acks, ceiling_id, stored, problems)
    ceiling_rows = Message.objects.filter(conversation_id=ceiling_id).count()
    if ceiling_rows != ceiling_acked:
        problems.append(f"ceiling: {ceiling_rows} rows stored, {ceiling_acked} acknowledged")
    return {
        "messages_stored": len(stored),
        "messages_acknowledged": len(acked),
        "idempotency_keys": record_count,
        "conversations_checked": conversations,
        "ceiling_rows": ceiling_rows,
        "problems": problems,
    }


_ROLLUP_TABLES = (
    "DailyConversationRollup",
    "DailyCloseRollup",
    "DailyQuestionRollup",
    "DailyUsageRollup",
    "DailyModelUsageRollup",
    "DailyGroundingRollup",
)


def _rollup_rows() -> dict[str, set[tuple[Any, ...]]]:
    from django.forms.models import model_to_dict

    from support import models

    rows: dict[str, set[tuple[Any, ...]]] = {}
    for name in _ROLLUP_TABLES:
        table = getattr(models, name)
        rows[name] = {
            tuple(sorted((k, v) for k, v in model_to_dict(row).items() if k != "id" and v is not None))
            for row in table.objects.all()
        }
        # A row brought back to zero (a conversation that moved on) is no row at all to a rebuild.
        rows[name] = {row for row in rows[name] if any(type(v) is int and v for k, v in row if k != "close_bucket")}
    return rows


def fold_wait(problems: list[str]) -> dict[str, Any]:
    """Right after the load, with the task queue's consumer still running: how long the turns waited for
    the rollup fold."""
    import time

    from support.models import Message

    started = time.monotonic()
    pending = Message.objects.filter(rollup_pending=True).count()
    while pending and time.monotonic() - started < 30:
        time.sleep(0.5)
        pending = Message.objects.filter(rollup_pending=True).count()
    waited = round(time.monotonic() - started, 1)
    if pending:
        problems.append(f"{pending} turns still waited for the rollup fold {waited} s after the load")
    return {"fold_wait_s": waited, "pending_after": pending}


def rollups_compare(problems: list[str], ceiling_id: str) -> list[str]:
    """The rollups against a rebuild from scratch; the tables that differ. The ceiling's rows are bare inserts
    that bypass the services on purpose (never in the rollups), so they go first."""
    from support import services
    from support.models import Message

    Message.objects.filter(conversation_id=ceiling_id).delete()
    live = _rollup_rows()
    services.rollups_rebuild()
    rebuilt = _rollup_rows()
    differ = [name for name in _ROLLUP_TABLES if live[name] != rebuilt[name]]
    if differ:
        problems.append(f"rollups differ from a rebuild in {differ}")
    return differ


def _conversation_with_pairs(n: int, escalate: bool) -> Any:
    from support import services

    conversation, token = services.conversation_create()
    for i in range(n):
        services.message_log(
            conversation=conversation,
            turns=[services.Turn(role="user", content=f"q{i}"), services.Turn(role="assistant", content="a")],
            is_escalation=escalate and i == 0,
        )
    return conversation, token


def _count(client: Any, method: str, path: str, **extra: Any) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(path, **extra)
    assert response.status_code in (200, 201), (path, response.status_code, response.content[:300])
    return len(queries)


def _read_counts(staff: Any, widget: Any, small: Any, small_token: str, large: Any, large_token: str) -> dict[str, Any]:
    return {
        "GET conversations": (
            _count(staff, "get", "/api/support/conversations?page_size=10"),
            _count(staff, "get", "/api/support/conversations?page_size=100"),
        ),
        "GET tickets": (
            _count(staff, "get", "/api/support/tickets?page_size=10"),
            _count(staff, "get", "/api/support/tickets?page_size=100"),
        ),
        "GET conversations/{id} (staff)": (
            _count(staff, "get", f"/api/support/conversations/{small.pk}"),
            _count(staff, "get", f"/api/support/conversations/{large.pk}"),
        ),
        "GET conversations/{id} (widget)": (
            _count(widget, "get", f"/api/support/conversations/{small.pk}", HTTP_X_CONVERSATION_TOKEN=small_token),
            _count(widget, "get", f"/api/support/conversations/{large.pk}", HTTP_X_CONVERSATION_TOKEN=large_token),
        ),
        "GET analytics (days=10 / 100)": (
            _count(staff, "get", "/api/support/analytics?days=10"),
            _count(staff, "get", "/api/support/analytics?days=100"),
        ),
    }


def query_counts(staff_token: str) -> dict[str, Any]:
    """Queries per request at page size 10 and 100 (list endpoints) or 10 and 100 messages (transcript)."""
    from django.test import Client

    for _ in range(100):  # enough rows in the review queue to fill a page of 100
        _conversation_with_pairs(1, escalate=True)
    small, small_token = _conversation_with_pairs(5, escalate=False)
    large, large_token = _conversation_with_pairs(50, escalate=False)
    staff = Client(HTTP_HOST=harness.HOST, HTTP_AUTHORIZATION=f"Token {staff_token}")
    widget = Client(HTTP_HOST=harness.HOST)
    rows = _read_counts(staff, widget, small, small_token, large, large_token)
    body = {"user_message": "q", "assistant_message": "a", "input_tokens": 5, "output_tokens": 7}
    single = (
        _count(
            widget,
            "post",
            f"/api/support/conversations/{small.pk}/messages",
            data=body,
            content_type="application/json",
            HTTP_X_CONVERSATION_TOKEN=small_token,
            HTTP_IDEMPOTENCY_KEY="query-count",
        ),
        _count(widget, "post", "/api/support/conversations", data={}, content_type="application/json"),
    )
    return {
        "at_10_and_100": {name: list(pair) for name, pair in rows.items()},
        "single": {"POST messages (pair, with Idempotency-Key)": single[0], "POST conversations": single[1]},
        "unequal": [name for name, (a, b) in rows.items() if a != b],
    }
