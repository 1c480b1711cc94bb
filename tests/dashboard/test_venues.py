"""The staff pages per venue: business and audience filters on the queue, ticket list, CSV and analytics, and
staff limited to some businesses (StaffScope) on each of them and in the admin."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory

from support.models import Conversation, Message, StaffScope, Status, TicketEvent
from tests.fakes.venues import build_venues, limit_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def venues(staff_user: Any) -> Any:
    return build_venues(staff=staff_user)


def listed(client: Client, url: str) -> dict[str, int]:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["totals"]


def queue_ids(client: Client, url: str = "/dashboard/") -> set[Any]:
    response = client.get(url)
    assert response.status_code == 200, url
    return {c.pk for c in response.context["page"]}


def csv_rows(client: Client, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def waiting(conversations: list[Any]) -> set[Any]:
    return {c.pk for c in conversations if c.status in (Status.NEEDS_REVIEW, Status.OPEN, Status.IN_PROGRESS)}


def test_the_queue_filters_by_business_and_audience(browser: Client, venues: Any) -> None:
    assert queue_ids(browser, "/dashboard/?business_id=b8") == waiting(venues.of("b8"))
    owners = [c for c in venues.conversations if c.audience == "owner"]
    assert queue_ids(browser, "/dashboard/?audience=owner") == waiting(owners)
    live = browser.get("/dashboard/queue/live?business_id=b8")
    assert {c.pk for c in live.context["page"]} == waiting(venues.of("b8"))


def test_a_limited_user_sees_only_their_businesses_in_the_queue(browser: Client, staff_user: Any, venues: Any) -> None:
    limit_to(staff_user, "b7")
    assert queue_ids(browser) == waiting(venues.of("b7"))
    tabs = browser.get("/dashboard/").context["tabs"]
    assert tabs[0]["count"] == len(waiting(venues.of("b7")))
    since = min(c.created_at for c in venues.conversations).isoformat()
    live = browser.get("/dashboard/queue/live", {"since": since})
    assert live.context["new_escalations"] == 1


def test_the_ticket_list_and_csv_filter_by_business_and_carry_it(browser: Client, venues: Any) -> None:
    b7 = venues.of("b7")
    totals = listed(browser, "/dashboard/conversations/?business_id=b7")
    assert totals["conversations"] == len(b7)
    assert totals["cost_micros"] == sum(c.cost_micros for c in b7)
    rows = csv_rows(browser, "/dashboard/conversations.csv?business_id=b7&audience=diner")
    assert {row["id"] for row in rows} == {str(c.pk) for c in b7 if c.audience == "diner"}
    assert {(row["business_id"], row["audience"]) for row in rows} == {("b7", "diner")}
    assert browser.get("/dashboard/conversations/?audience=chef").status_code == 400


def test_a_limited_user_lists_and_exports_only_their_businesses(browser: Client, staff_user: Any, venues: Any) -> None:
    limit_to(staff_user, "b7")
    assert listed(browser, "/dashboard/conversations/")["conversations"] == len(venues.of("b7"))
    assert listed(browser, "/dashboard/conversations/?business_id=b8")["conversations"] == 0
    assert {row["business_id"] for row in csv_rows(browser, "/dashboard/conversations.csv")} == {"b7"}


def test_a_limited_user_gets_404_for_another_businesses_ticket(browser: Client, staff_user: Any, venues: Any) -> None:
    limit_to(staff_user, "b7")
    theirs = venues.of("b8")[0]
    base = f"/dashboard/conversations/{theirs.pk}/"
    assert browser.get(base).status_code == 404
    assert browser.post(base, {"action": "status", "status": "closed"}).status_code == 404
    assert browser.post(f"{base}reply", {"content": "Hi"}).status_code == 404
    assert browser.post(f"{base}handoff", {"handled_by": "human"}).status_code == 404
    assert browser.get(f"{base}turns").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Status.NEEDS_REVIEW
    assert browser.get(f"/dashboard/conversations/{venues.of('b7')[0].pk}/").status_code == 200


def assert_every_figure_drills_down(browser: Client, url: str) -> dict[str, Any]:
    context = browser.get(url).context
    for card in context["cards"]:
        assert listed(browser, card["url"])["conversations"] == card["count"], card["label"]
    tables = context["tables"]
    for row in tables["questions"] + tables["reasons"] + tables["statuses"]:
        assert listed(browser, row["url"])["conversations"] == row["count"], row
    for row in tables["sources"] + tables["businesses"] + tables["audiences"]:
        totals = listed(browser, row["url"])
        assert (totals["conversations"], totals["cost_micros"]) == (row["conversations"], row["cost_micros"]), row
        assert listed(browser, row["escalated_url"])["conversations"] == row["escalated"], row
        if "auto_url" in row:
            assert listed(browser, row["auto_url"])["conversations"] == row["auto_resolved"], row
    for chart, counts in zip(context["charts"], context["bar_counts"], strict=True):
        for bar, count in zip(chart.bars, counts, strict=True):
            assert listed(browser, bar.url)["conversations"] == count, (chart.title, bar.title)
    return context


def test_every_analytics_figure_filtered_by_business_drills_down_to_its_tickets(browser: Client, venues: Any) -> None:
    context = assert_every_figure_drills_down(browser, "/dashboard/analytics/?days=7&business_id=b8")
    assert context["data"]["total_conversations"] == len(venues.of("b8"))
    assert all("business_id=b8" in card["url"] for card in context["cards"])
    html = browser.get("/dashboard/analytics/?days=7&business_id=b8").content.decode()
    assert "?days=30&amp;business_id=b8" in html


def test_per_business_rows_on_the_analytics_page_drill_down(browser: Client, venues: Any) -> None:
    context = assert_every_figure_drills_down(browser, "/dashboard/analytics/?days=7")
    businesses = {row["business_id"]: row for row in context["tables"]["businesses"]}
    assert {key: row["conversations"] for key, row in businesses.items()} == {"b7": 3, "b8": 3, "": 1}
    assert listed(browser, businesses[""]["url"])["conversations"] == 1  # no_business: the blank filter is "any"
    audiences = {row["audience"]: row["conversations"] for row in context["tables"]["audiences"]}
    assert audiences == {"diner": 3, "owner": 3, "": 1}


def test_a_limited_users_analytics_sum_only_their_businesses(browser: Client, staff_user: Any, venues: Any) -> None:
    limit_to(staff_user, "b7")
    context = assert_every_figure_drills_down(browser, "/dashboard/analytics/?days=7")
    assert context["data"]["total_conversations"] == len(venues.of("b7"))
    assert [row["business_id"] for row in context["tables"]["businesses"]] == ["b7"]
    other = browser.get("/dashboard/analytics/?days=7&business_id=b8").context["data"]
    assert other["total_conversations"] == 0


def test_superusers_edit_a_staff_users_businesses_in_the_admin(
    admin_client_for: Client, staff_user: Any, boss: Any
) -> None:
    response = admin_client_for.post(
        "/admin/support/staffscope/add/", {"user": staff_user.pk, "business_ids": "b7, b9\nb7\n"}
    )
    assert response.status_code == 302, response.content
    assert StaffScope.objects.get(user=staff_user).business_ids == ["b7", "b9"]
    refused = admin_client_for.post("/admin/support/staffscope/add/", {"user": boss.pk, "business_ids": "b7"})
    assert refused.status_code == 200
    assert "Superusers always see every business" in refused.content.decode()


def test_a_limited_user_cannot_edit_scopes_and_the_admin_lists_only_their_tickets(
    staff_user: Any, venues: Any, boss: Any
) -> None:
    # The model admins themselves: Django's permission tables are not what is tested here.
    limit_to(staff_user, "b7")
    request = RequestFactory().get("/admin/")
    request.user = staff_user
    mine = {c.pk for c in venues.of("b7")}
    assert {c.pk for c in admin.site._registry[Conversation].get_queryset(request)} == mine
    for model in (Message, TicketEvent):
        rows = admin.site._registry[model].get_queryset(request)
        assert rows.exists()
        assert {row.conversation_id for row in rows} <= mine
    scopes = admin.site._registry[StaffScope]
    assert not scopes.has_module_permission(request)
    assert not scopes.has_change_permission(request)
    request.user = boss
    assert scopes.has_module_permission(request)
    assert admin.site._registry[Conversation].get_queryset(request).count() == len(venues.conversations)
