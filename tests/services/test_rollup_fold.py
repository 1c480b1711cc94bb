"""Issue 13: the usage rollups leave the request path. A stored turn is marked pending, the task queue's fold
adds it within seconds, and the rollups then equal a rebuild from scratch, whatever happened in between."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

from support import services, tasks
from support.models import Conversation, DailyConversationRollup, DailyUsageRollup, Message
from support.services import rollup_fold
from tests.fakes.desk import turn_pair
from tests.services.test_rollups import snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_turn_waits_for_the_fold_off_the_request_path_and_is_then_counted(task_queue: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(rollup_fold, "_soon_next", 0.0)  # an earlier test's request asked within the second
    conversation, _ = services.conversation_create()
    services.message_log(conversation=conversation, turns=turn_pair("How do refunds work here?", "Within 14 days."))
    assert Message.objects.filter(rollup_pending=True).count() == 2
    assert not DailyUsageRollup.objects.exists()
    # One fold is asked of the task queue, a moment later, for the turns of the whole second.
    services.message_log(conversation=conversation, turns=turn_pair("And for annual plans?", "The same."))
    assert [task.name for task in task_queue.pending()] == ["rollups_fold_task"]
    assert services.rollups_fold() == 4
    assert not Message.objects.filter(rollup_pending=True).exists()
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live
    [row] = DailyUsageRollup.objects.filter(model="claude-haiku-4-5")
    assert (row.conversations, row.messages) == (1, 4)


def test_the_cost_lands_on_the_state_row_it_was_counted_in_when_the_conversation_moves_before_the_fold(
    task_queue: Any,
) -> None:
    conversation, _ = services.conversation_create()
    services.message_log(conversation=conversation, turns=turn_pair("Can I change my booking?", "Yes, any time."))
    services.conversation_rate(conversation=conversation, rating="down")  # moves it to another state row
    services.message_log(conversation=conversation, turns=turn_pair("It did not work though", "Sorry about that."))
    services.rollups_fold()
    conversation.refresh_from_db()
    rows = {row.outcome: row.cost_micros for row in DailyConversationRollup.objects.all() if row.cost_micros}
    assert rows == {conversation.outcome: conversation.cost_micros}
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live


def test_concurrent_first_turns_count_a_conversation_once_per_model() -> None:
    # Before the fold, two first turns at once could both find no earlier turn of the model (on MongoDB).
    conversation, _ = services.conversation_create()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def log(index: int) -> None:
        try:
            own = Conversation.objects.get(pk=conversation.pk)
            barrier.wait()
            services.message_log(conversation=own, turns=turn_pair(f"Question number {index} here", "An answer."))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=log, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    services.rollups_fold()
    [row] = DailyUsageRollup.objects.filter(model="claude-haiku-4-5")
    assert (row.conversations, row.messages) == (1, 8)
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live


def test_a_fold_left_locked_by_a_dead_process_is_taken_over_once_its_lease_ends(monkeypatch: Any) -> None:
    conversation, _ = services.conversation_create()
    tasks.HUEY.put_if_empty(rollup_fold._LOCK_KEY, time.time() - 1)  # a fold whose process died
    monkeypatch.setattr(rollup_fold, "FOLD_LOCK_WAIT_S", 0.2)
    services.message_log(conversation=conversation, turns=turn_pair("Where is my invoice?", "Under Billing."))
    assert not Message.objects.filter(rollup_pending=True).exists()
    tasks.HUEY.put_if_empty(rollup_fold._LOCK_KEY, time.time() + 60)  # a fold still running elsewhere
    assert services.rollups_fold() == 0
    tasks.HUEY.delete(rollup_fold._LOCK_KEY)


def test_a_rebuild_marks_what_it_counted_so_the_next_fold_does_not_count_it_again() -> None:
    # Turns imported outside the services (a restore, say) are counted by a rebuild, which marks them too.
    conversation, _ = services.conversation_create()
    Message.objects.bulk_create(
        Message(conversation=conversation, role=role, content="Imported turn here", model="claude-haiku-4-5")
        for role in ("user", "assistant")
    )
    services.rollups_rebuild()
    services.message_log(conversation=conversation, turns=turn_pair("And one more question?", "One more answer."))
    [row] = DailyUsageRollup.objects.filter(model="claude-haiku-4-5")
    assert (row.conversations, row.messages) == (1, 4)
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live
