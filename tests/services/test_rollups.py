"""The daily rollups: kept by the services, equal to a rebuild from scratch, read by analytics."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from support import rollups, selectors, services
from support.models import (
    Conversation,
    DailyCloseRollup,
    DailyConversationRollup,
    DailyModelUsageRollup,
    DailyQuestionRollup,
    DailyUsageRollup,
    EscalationReason,
    MessageOrigin,
    Status,
)
from support.services.rollups import _rollup_add
from tests.fakes.desk import build_desk, turn_pair

pytestmark = pytest.mark.django_db


def snapshot() -> dict[str, set[tuple[Any, ...]]]:
    """Every non-empty rollup row, without ids, to compare live rows with rebuilt ones."""
    return {
        "state": {
            (
                r.day,
                r.source,
                r.status,
                r.escalated,
                r.escalation_reason,
                r.rating,
                r.outcome,
                r.cost_micros,
                r.conversations,
            )
            for r in DailyConversationRollup.objects.all()
            if r.conversations or r.cost_micros
        },
        "closes": {(r.day, r.close_bucket, r.conversations) for r in DailyCloseRollup.objects.all() if r.conversations},
        "usage": {
            (
                r.day,
                r.source,
                r.model,
                r.conversations,
                r.messages,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.cost_micros,
                *(getattr(r, name) for name in selectors.CLIENT_COLUMNS),
            )
            for r in DailyUsageRollup.objects.all()
            if r.messages or r.cost_micros
        },
        "questions": {
            (r.day, r.question_key, r.conversations) for r in DailyQuestionRollup.objects.all() if r.conversations
        },
        "model_usage": {
            (r.day, r.model, *(getattr(r, name) for name in (*selectors.USAGE_COLUMNS, *selectors.CLIENT_COLUMNS)))
            for r in DailyModelUsageRollup.objects.all()
            if r.messages or r.cost_micros
        },
    }


def test_rollups_kept_by_the_services_equal_a_rebuild_from_scratch(staff_user: Any) -> None:
    first, _ = services.conversation_create(source="web")
    services.message_log(conversation=first, turns=turn_pair("How much is it?", "From £0."))
    services.message_log(conversation=first, turns=turn_pair("And for teams?", "£10.", model="claude-sonnet-4-5"))
    proxied = [services.Turn(role="assistant", content="Ours.", output_tokens=9, origin=MessageOrigin.PROXY)]
    services.message_log(conversation=first, turns=proxied)
    second, _ = services.conversation_create(source="app_owner")
    services.message_log(
        conversation=second,
        turns=turn_pair("I want a human", "Email us."),
        is_escalation=True,
        escalation_reason=EscalationReason.HUMAN_REQUESTED,
    )
    services.conversation_update(conversation=second, actor=staff_user, changes={"status": Status.IN_PROGRESS})
    services.conversation_update(conversation=second, actor=staff_user, changes={"status": Status.CLOSED})
    third, _ = services.conversation_create(source="web")
    services.conversation_update(conversation=third, actor=staff_user, changes={"escalated": True})
    services.conversation_update(conversation=third, actor=staff_user, changes={"status": Status.CLOSED})
    services.conversation_update(conversation=third, actor=staff_user, changes={"status": Status.OPEN})
    services.conversation_rate(conversation=first, rating="down")
    services.conversation_rate(conversation=first, rating="up")
    services.conversation_rate(conversation=second, rating="down")
    services.conversation_escalate(conversation=first, reason=EscalationReason.BOT_TOOL)

    live = snapshot()
    assert live["state"] and live["usage"] and live["questions"]
    services.rollups_rebuild(batch_size=1)
    assert snapshot() == live


def test_moving_a_ticket_between_states_keeps_one_count_per_conversation(staff_user: Any) -> None:
    conversation, _ = services.conversation_create(source="web")
    for status in (Status.OPEN, Status.IN_PROGRESS, Status.CLOSED, Status.NEEDS_REVIEW):
        services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": status})
        rows = {r.status: r.conversations for r in DailyConversationRollup.objects.all()}
        assert sum(rows.values()) == 1
        assert rows[status] == 1


def test_a_stale_conversation_object_is_reread_before_it_is_moved(staff_user: Any) -> None:
    conversation, _ = services.conversation_create(source="web")
    stale = Conversation.objects.get(pk=conversation.pk)
    services.conversation_escalate(conversation=conversation, reason=EscalationReason.WIDGET_FLAG)
    services.conversation_update(conversation=stale, actor=staff_user, changes={"status": Status.CLOSED})
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live
    assert Conversation.objects.get().status == Status.CLOSED


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_writes_to_a_new_day_row_lose_nothing() -> None:
    day = timezone.now().date()
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(5):
                _rollup_add(DailyQuestionRollup, key={"day": day, "question_key": "race"}, conversations=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert DailyQuestionRollup.objects.get(day=day, question_key="race").conversations == 20


def test_close_buckets_and_the_median_read_from_them() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert rollups.close_bucket(status="open", escalated=True, escalated_at=start, closed_at=start) == -1
    assert rollups.close_bucket(status="closed", escalated=False, escalated_at=start, closed_at=start) == -1
    assert (
        rollups.close_bucket(
            status="closed", escalated=True, escalated_at=start, closed_at=start + timedelta(seconds=30)
        )
        == 0
    )
    two_hours = rollups.close_bucket(
        status="closed", escalated=True, escalated_at=start, closed_at=start + timedelta(hours=2)
    )
    assert rollups.CLOSE_BUCKET_BOUNDS_S[two_hours] == 7200
    assert rollups.median_from_buckets({}) is None
    # Three tickets at ~2 h and one at ~1 d: the median lies in the 2 h bucket (5400-7200 s).
    median = rollups.median_from_buckets({two_hours: 3, two_hours + 8: 1})
    assert 5400 <= median <= 7200


def test_analytics_read_only_the_rollups(staff_user: Any, django_assert_max_num_queries: Any) -> None:
    build_desk(staff=staff_user)
    # 11 for the rollups (one of them the outcomes'), 2 for the first-response figures (selectors.first_response:
    # escalated conversations), 1 for the ungrounded conversations' rollup: 14 whatever the window.
    with django_assert_max_num_queries(14):
        data = selectors.analytics_summary(days=7)
    assert data["total_conversations"] == 7
    # Deleting the source rows does not change the answer: it comes from the rollups alone.
    Conversation.objects.all().delete()
    assert selectors.analytics_summary(days=7)["total_conversations"] == 7


def test_analytics_figures_match_the_conversations_they_count(staff_user: Any) -> None:
    desk = build_desk(staff=staff_user)
    recent = desk[:-1]
    data = selectors.analytics_summary(days=7)
    assert data["total_conversations"] == len(recent)
    assert data["total_messages"] == sum(c.message_count for c in recent)
    assert data["total_cost_micros"] == sum(c.cost_micros for c in recent)
    assert data["auto_resolved"] == sum(c.status == Status.AUTO_RESOLVED for c in recent)
    assert data["escalated"] == sum(c.escalated for c in recent)
    assert sum(d["count"] for d in data["conversations_by_day"]) == len(recent)
    assert sum(d["cost_micros"] for d in data["cost_by_day"]) == data["total_cost_micros"]
    assert {r["reason"]: r["count"] for r in data["escalations_by_reason"]} == {
        EscalationReason.WIDGET_FLAG: 2,
        EscalationReason.SUPPORT_EMAIL: 1,
        EscalationReason.HUMAN_REQUESTED: 1,
    }
    assert data["top_questions"][0] == {"question": "how much is it", "count": 4}
    assert {m["model"]: m["conversations"] for m in data["by_model"]} == {
        "claude-haiku-4-5": 5,
        "claude-sonnet-4-5": 2,
    }
    # Two closed after escalation: 2 h and 30 h; the median lies between the two buckets' edges.
    assert data["closed_after_escalation"] == 2
    assert 2 * 3600 * 0.5 <= data["median_escalation_to_close_seconds"] <= 30 * 3600 * 1.5
    # The escalation rate per day adds up to the escalated count.
    assert sum(d["escalated"] for d in data["escalation_rate_by_day"]) == data["escalated"]


def test_an_explicit_date_range_wins_over_days(staff_user: Any) -> None:
    build_desk(staff=staff_user)
    today = timezone.now().date()
    data = selectors.analytics_summary(days=7, date_from=today - timedelta(days=60), date_to=today - timedelta(days=30))
    assert data["days"] == 31
    assert data["total_conversations"] == 1
    assert len(data["conversations_by_day"]) == 31


def test_top_questions_sum_exact_counts_over_days_with_many_distinct_questions() -> None:
    today = timezone.now().date()
    expected: dict[str, int] = {}
    rows = []
    for offset in range(5):
        day = today - timedelta(days=offset)
        for rank in range(60):  # far more distinct questions a day than candidates are taken
            count = 100 - rank + (offset * rank) % 7
            key = f"question {rank}"
            rows.append(DailyQuestionRollup(day=day, question_key=key, conversations=count))
            expected[key] = expected.get(key, 0) + count
    DailyQuestionRollup.objects.bulk_create(rows)
    top = selectors.analytics_summary(days=5)["top_questions"]
    best = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [(row["question"], row["count"]) for row in top] == best


def test_top_questions_leave_out_questions_whose_window_sums_to_nothing() -> None:
    today = timezone.now().date()
    rows = [DailyQuestionRollup(day=today, question_key=f"asked {n}", conversations=n) for n in range(1, 4)]
    rows += [DailyQuestionRollup(day=today, question_key=f"zero {n}", conversations=0) for n in range(12)]
    rows.append(DailyQuestionRollup(day=today, question_key="drained", conversations=-1))
    DailyQuestionRollup.objects.bulk_create(rows)
    top = selectors.analytics_summary(days=1)["top_questions"]
    assert top == [{"question": f"asked {n}", "count": n} for n in (3, 2, 1)]
