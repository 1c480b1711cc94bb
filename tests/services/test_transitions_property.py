"""Property: whatever mix of state changes several threads make at once, the live rollups equal a rebuild.

Hypothesis picks the mix (status changes, escalations, assignments, ratings up and down, contact addresses,
closing and reopening), spread over a few conversations and threads that each act on their own, possibly
stale, copy. tests/services/test_transitions.py has the fixed-seed version through the API.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import services
from support.models import Conversation, DailyCloseRollup, DailyConversationRollup, EscalationReason, Rating, Status
from tests.services.test_rollups import snapshot

THREADS = 4
CONVERSATIONS = 3

#: One state change: (kind, argument). The argument means what the kind says (a status, a reason...).
Op = tuple[str, Any]

ops = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(Status.values)),
    st.tuples(st.just("escalate"), st.sampled_from(EscalationReason.values)),
    st.tuples(st.just("assign"), st.booleans()),
    st.tuples(st.just("rate"), st.sampled_from(Rating.values)),
    st.tuples(st.just("contact"), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("close_reopen"), st.booleans()),
)
#: Per thread, a list of (which conversation, what change).
mixes = st.lists(
    st.lists(st.tuples(st.integers(min_value=0, max_value=CONVERSATIONS - 1), ops), min_size=1, max_size=6),
    min_size=THREADS,
    max_size=THREADS,
)


def _apply(conversation: Conversation, op: Op, *, staff_user: Any) -> None:
    kind, argument = op
    if kind == "status":
        services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": argument})
    elif kind == "escalate":
        services.conversation_escalate(conversation=conversation, reason=argument)
    elif kind == "assign":
        changes = {"assigned_to": staff_user if argument else None}
        services.conversation_update(conversation=conversation, actor=staff_user, changes=changes)
    elif kind == "rate":
        services.conversation_rate(conversation=conversation, rating=argument)
    elif kind == "contact":
        services.conversation_contact_set(conversation=conversation, email=f"diner{argument}@example.com")
    else:
        status = Status.CLOSED if argument else Status.OPEN
        services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": status})


def _run(mix: list[list[tuple[int, Op]]], *, pks: list[Any], staff_user: Any) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(mix))

    def worker(thread_ops: list[tuple[int, Op]]) -> None:
        try:
            # Each thread's own copies, read once: later changes run on stale state, as requests do.
            copies = {pk: Conversation.objects.get(pk=pk) for pk in pks}
            start.wait(timeout=30)
            for index, op in thread_ops:
                try:
                    _apply(copies[pks[index]], op, staff_user=staff_user)
                except services.ConversationConflict:
                    pass  # outlasted the retries: nothing was written, the caller may try again
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(thread_ops,)) for thread_ops in mix]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mix=mixes,
    sources=st.lists(st.sampled_from(["web", "app_owner"]), min_size=CONVERSATIONS, max_size=CONVERSATIONS),
)
def test_any_concurrent_mix_of_transitions_keeps_the_rollups_equal_to_a_rebuild(
    mix: list[list[tuple[int, Op]]], sources: list[str], staff_user: Any
) -> None:
    pks = [services.conversation_create(source=source)[0].pk for source in sources]

    errors = _run(mix, pks=pks, staff_user=staff_user)

    assert errors == [], errors[:3]
    assert not DailyConversationRollup.objects.filter(conversations__lt=0).exists()
    assert not DailyCloseRollup.objects.filter(conversations__lt=0).exists()
    # The rows a state change moves. (Usage rows are message logging's: not compared here.)
    live = {name: rows for name, rows in snapshot().items() if name in ("state", "closes")}
    services.rollups_rebuild()
    assert {name: rows for name, rows in snapshot().items() if name in ("state", "closes")} == live
    assert sum(row[-1] for row in live["state"]) == Conversation.objects.count()
