"""Per-venue reads: the business and audience filters, and staff limited to some businesses (StaffScope)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from support import selectors, services
from support.models import (
    Conversation,
    DailyCloseRollup,
    DailyConversationRollup,
    DailyQuestionRollup,
    DailyUsageRollup,
    StaffScope,
    Status,
)
from support.selectors import ConversationFilters
from tests.fakes.desk import haiku_price_doubled
from tests.fakes.venues import build_venues, limit_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def venues(staff_user: Any) -> Any:
    return build_venues(staff=staff_user)


def ids(queryset: Any) -> set[Any]:
    return {c.pk for c in queryset}


def test_a_limited_staff_user_lists_only_their_businesses(venues: Any, staff_user: Any) -> None:
    limit_to(staff_user, "b7")
    assert ids(selectors.conversation_list(user=staff_user)) == {c.pk for c in venues.of("b7")}
    assert ids(selectors.ticket_list(user=staff_user)) == {
        c.pk for c in venues.of("b7") if c.status != Status.CLOSED and c.escalated
    }


def test_superusers_and_staff_without_a_scope_see_every_business(
    venues: Any, staff_user: Any, django_user_model: Any
) -> None:
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-123-long-enough")
    StaffScope.objects.create(user=boss, business_ids=["b7"])  # never applies to a superuser
    everything = {c.pk for c in venues.conversations}
    assert ids(selectors.conversation_list(user=boss)) == everything
    assert ids(selectors.conversation_list(user=staff_user)) == everything


def test_a_scope_with_no_businesses_sees_nothing_and_neither_does_a_non_staff_user(
    venues: Any, staff_user: Any, customer_user: Any
) -> None:
    limit_to(staff_user)
    assert not selectors.conversation_list(user=staff_user).exists()
    assert not selectors.conversation_list(user=customer_user).exists()
    assert selectors.analytics_summary(days=1, user=staff_user)["total_conversations"] == 0


def test_the_detail_of_another_business_is_none_for_a_limited_user(venues: Any, staff_user: Any) -> None:
    limit_to(staff_user, "b7")
    mine, theirs = venues.of("b7")[0], venues.of("b8")[0]
    assert selectors.conversation_get(conversation_id=mine.pk, user=staff_user) == mine
    assert selectors.conversation_get(conversation_id=theirs.pk, user=staff_user) is None
    assert selectors.conversation_get(conversation_id=theirs.pk) == theirs  # internal callers are not limited


def test_the_business_and_audience_filters_combine(venues: Any) -> None:
    b8_owners = ConversationFilters(business_id="b8", audience="owner")
    assert ids(selectors.conversation_list(filters=b8_owners)) == {
        c.pk for c in venues.conversations if c.business_id == "b8" and c.audience == "owner"
    }
    diners = ConversationFilters(audience="diner")
    assert len(selectors.conversation_list(filters=diners)) == 3


def test_new_escalations_in_the_queue_count_only_what_the_user_may_see(venues: Any, staff_user: Any) -> None:
    since = min(c.created_at for c in venues.conversations)
    assert selectors.queue_escalations_since(since=since, user=staff_user) == 3  # b7 owner, b8 diner, no business
    limit_to(staff_user, "b7")
    assert selectors.queue_escalations_since(since=since, user=staff_user) == 1


@pytest.mark.parametrize(("business_id", "audience"), [("b7", ""), ("b8", ""), ("", "diner"), ("b8", "owner")])
def test_every_analytics_figure_filtered_by_venue_sums_only_those_conversations(
    venues: Any, business_id: str, audience: str
) -> None:
    data = selectors.analytics_summary(days=1, business_id=business_id, audience=audience)
    listed = list(selectors.conversation_list(filters=ConversationFilters(business_id=business_id, audience=audience)))
    assert data["total_conversations"] == len(listed)
    assert data["total_messages"] == sum(c.message_count for c in listed)
    assert data["total_cost_micros"] == sum(c.cost_micros for c in listed)
    assert data["escalated"] == sum(c.escalated for c in listed)
    assert data["auto_resolved"] == sum(c.status == Status.AUTO_RESOLVED for c in listed)
    assert data["closed_after_escalation"] == sum(c.escalated and c.status == Status.CLOSED for c in listed)
    assert {r["reason"]: r["count"] for r in data["escalations_by_reason"]} == {
        reason: sum(c.escalation_reason == reason for c in listed)
        for reason in {c.escalation_reason for c in listed if c.escalated}
    }
    assert sum(row["count"] for row in data["conversations_by_day"]) == len(listed)
    assert sum(row["conversations"] for row in data["by_source"]) == len(listed)
    assert sum(row["count"] for row in data["top_questions"]) == len(listed)
    assert (data["business_id"], data["audience"]) == (business_id, audience)


def test_analytics_for_a_limited_user_sum_only_their_businesses(venues: Any, staff_user: Any) -> None:
    limit_to(staff_user, "b7")
    mine = venues.of("b7")
    data = selectors.analytics_summary(days=1, user=staff_user)
    assert data["total_conversations"] == len(mine)
    assert data["total_cost_micros"] == sum(c.cost_micros for c in mine)
    assert [row["business_id"] for row in data["by_business"]] == ["b7"]
    assert {q["question"] for q in data["top_questions"]} == {
        "how much is it",
        "how do i add a table",
        "where is my booking",
    }
    # Asking for another business does not widen the scope: nothing is summed.
    assert selectors.analytics_summary(days=1, user=staff_user, business_id="b8")["total_conversations"] == 0


def test_per_business_and_audience_rows_equal_the_conversations_behind_them(venues: Any) -> None:
    data = selectors.analytics_summary(days=1)
    for field, rows in (("business_id", data["by_business"]), ("audience", data["by_audience"])):
        assert sum(row["conversations"] for row in rows) == len(venues.conversations)
        for row in rows:
            listed = [c for c in venues.conversations if getattr(c, field) == row[field]]
            assert row["conversations"] == len(listed), row
            assert row["cost_micros"] == sum(c.cost_micros for c in listed), row
            assert row["escalated"] == sum(c.escalated for c in listed), row
            assert row["auto_resolved"] == sum(c.status == Status.AUTO_RESOLVED for c in listed), row
    assert [row["business_id"] for row in data["by_business"]] == ["b7", "b8", ""]


def test_analytics_filtered_by_venue_still_read_only_the_rollups(
    venues: Any, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(14):
        data = selectors.analytics_summary(days=7, business_id="b7", audience="diner")
    assert data["total_conversations"] == 2


def rows(model: Any, *names: str) -> set[tuple[Any, ...]]:
    return {tuple(getattr(r, n) for n in names) for r in model.objects.all() if r.conversations}


def test_the_services_keep_per_venue_rollups_equal_to_a_rebuild(venues: Any, staff_user: Any) -> None:
    # A state change after creation moves the conversation between its venue's rows.
    services.conversation_update(conversation=venues.of("b8")[0], actor=staff_user, changes={"status": "closed"})
    tables = {
        DailyConversationRollup: ("day", "status", "escalated", "business_id", "audience", "conversations"),
        DailyCloseRollup: ("day", "close_bucket", "business_id", "audience", "conversations"),
        DailyQuestionRollup: ("day", "question_key", "business_id", "audience", "conversations"),
        DailyUsageRollup: (
            "day",
            "source",
            "model",
            "business_id",
            "audience",
            "conversations",
            "messages",
            "cost_micros",
        ),
    }
    live = {model: rows(model, *names) for model, names in tables.items()}
    assert {r[3] for r in live[DailyConversationRollup]} == {"b7", "b8", ""}
    services.rollups_rebuild()
    assert {model: rows(model, *names) for model, names in tables.items()} == live


def test_conversations_list_is_unchanged_without_a_user(venues: Any) -> None:
    assert Conversation.objects.count() == len(selectors.conversation_list()) == len(venues.conversations)


def test_a_reprice_moves_each_venues_cost_as_a_rebuild_would(venues: Any) -> None:
    haiku_price_doubled(days_back=30)
    before = selectors.analytics_summary(days=1, business_id="b7")["total_cost_micros"]
    services.messages_reprice(model="claude-haiku-4-5", since=(timezone.now() - timedelta(days=30)).date())
    live = {b: selectors.analytics_summary(days=1, business_id=b) for b in ("b7", "b8")}
    assert live["b7"]["total_cost_micros"] > before
    assert live["b7"]["total_cost_micros"] == sum(c.cost_micros for c in Conversation.objects.filter(business_id="b7"))
    services.rollups_rebuild()
    assert {b: selectors.analytics_summary(days=1, business_id=b) for b in ("b7", "b8")} == live
