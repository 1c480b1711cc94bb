"""The API per venue: business_id and audience filters, and staff limited to some businesses (StaffScope)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from support.models import Conversation, Status
from tests.fakes.venues import build_venues, limit_to

pytestmark = pytest.mark.django_db

BASE = "/api/support"


@pytest.fixture
def venues(staff_user: Any) -> Any:
    return build_venues(staff=staff_user)


def listed_ids(client: APIClient, url: str) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_the_conversation_and_ticket_lists_filter_by_business_and_audience(staff: APIClient, venues: Any) -> None:
    b7 = {str(c.pk) for c in venues.of("b7")}
    assert listed_ids(staff, f"{BASE}/conversations?business_id=b7") == b7
    owners = {str(c.pk) for c in venues.conversations if c.audience == "owner"}
    assert listed_ids(staff, f"{BASE}/conversations?audience=owner") == owners
    waiting_b8 = {str(c.pk) for c in venues.of("b8") if c.escalated or c.status == Status.OPEN}
    assert listed_ids(staff, f"{BASE}/tickets?business_id=b8") == waiting_b8


def test_bad_venue_filters_are_a_400_naming_the_field(staff: APIClient, venues: Any) -> None:
    response = staff.get(f"{BASE}/conversations?audience=chef")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"audience"}
    response = staff.get(f"{BASE}/analytics?business_id={'x' * 129}")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"business_id"}


def test_a_limited_staff_user_lists_only_their_businesses(staff: APIClient, staff_user: Any, venues: Any) -> None:
    limit_to(staff_user, "b7")
    b7 = {str(c.pk) for c in venues.of("b7")}
    assert listed_ids(staff, f"{BASE}/conversations") == b7
    assert listed_ids(staff, f"{BASE}/conversations?business_id=b8") == set()
    assert listed_ids(staff, f"{BASE}/tickets") == {str(venues.of("b7")[1].pk)}


def test_a_limited_staff_user_gets_404_for_another_business(staff: APIClient, staff_user: Any, venues: Any) -> None:
    limit_to(staff_user, "b7")
    theirs = venues.of("b8")[0]
    url = f"{BASE}/conversations/{theirs.pk}"
    assert staff.get(url).status_code == 404
    assert staff.get(f"{url}/messages").status_code == 404
    assert staff.patch(url, {"status": "closed"}, format="json").status_code == 404
    assert staff.post(f"{url}/replies", {"content": "Hello"}, format="json").status_code == 404
    assert Conversation.objects.get(pk=theirs.pk).status == theirs.status
    assert theirs.messages.count() == 4
    mine = venues.of("b7")[1]
    assert staff.get(f"{BASE}/conversations/{mine.pk}").status_code == 200
    assert staff.patch(f"{BASE}/conversations/{mine.pk}", {"status": "closed"}, format="json").status_code == 200


def test_analytics_filter_by_venue_and_sum_only_a_limited_users_businesses(
    staff: APIClient, staff_user: Any, venues: Any
) -> None:
    b8 = staff.get(f"{BASE}/analytics?days=1&business_id=b8").json()
    assert b8["total_conversations"] == len(venues.of("b8"))
    assert b8["total_cost_micros"] == sum(c.cost_micros for c in venues.of("b8"))
    diners = staff.get(f"{BASE}/analytics?days=1&audience=diner").json()
    assert diners["total_conversations"] == sum(c.audience == "diner" for c in venues.conversations)
    everyone = staff.get(f"{BASE}/analytics?days=1").json()
    assert {row["business_id"]: row["conversations"] for row in everyone["by_business"]} == {"b7": 3, "b8": 3, "": 1}
    # Each per-business figure drills down to GET conversations?business_id=... (no_business=true for none).
    for row in everyone["by_business"]:
        venue = f"business_id={row['business_id']}" if row["business_id"] else "no_business=true"
        assert len(listed_ids(staff, f"{BASE}/conversations?{venue}")) == row["conversations"]
        assert len(listed_ids(staff, f"{BASE}/conversations?{venue}&escalated=true")) == row["escalated"]

    limit_to(staff_user, "b7")
    mine = staff.get(f"{BASE}/analytics?days=1").json()
    assert mine["total_conversations"] == len(venues.of("b7"))
    assert mine["total_cost_micros"] == sum(c.cost_micros for c in venues.of("b7"))
    assert [row["business_id"] for row in mine["by_business"]] == ["b7"]
    assert staff.get(f"{BASE}/analytics?days=1&business_id=b8").json()["total_conversations"] == 0
