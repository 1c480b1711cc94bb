"""Staff pages under /dashboard/ with the Django test client."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from support import services
from support.models import Conversation, Status, TicketEvent
from tests.fakes.desk import build_desk

pytestmark = pytest.mark.django_db

PAGES = [
    "/dashboard/",
    "/dashboard/conversations/",
    "/dashboard/conversations.csv",
    "/dashboard/analytics/",
]


@pytest.fixture
def browser(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def desk(staff_user: Any) -> list[Conversation]:
    return build_desk(staff=staff_user)


def listed(client: Client, url: str) -> dict[str, int]:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["totals"]


def test_every_page_and_the_export_refuse_anonymous_and_non_staff_users(
    customer_user: Any, make_conversation: Any
) -> None:
    conversation, _ = make_conversation()
    pages = [*PAGES, f"/dashboard/conversations/{conversation.pk}/"]
    anonymous = Client()
    customer = Client()
    customer.force_login(customer_user)
    for page in pages:
        response = anonymous.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(reverse("login")), page
        assert customer.get(page).status_code == 403, page
    assert customer.post(pages[-1], {"action": "status", "status": "closed"}).status_code == 403
    assert Conversation.objects.get().status == Status.AUTO_RESOLVED


def test_every_page_renders_for_staff(browser: Client, desk: list[Conversation]) -> None:
    for page in [*PAGES, f"/dashboard/conversations/{desk[1].pk}/"]:
        assert browser.get(page).status_code == 200, page


def test_the_queue_lists_only_tickets_waiting_for_a_person_with_counts(
    browser: Client, desk: list[Conversation]
) -> None:
    response = browser.get("/dashboard/")
    shown = {c.pk for c in response.context["page"]}
    waiting = {c.pk for c in desk if c.status in (Status.NEEDS_REVIEW, Status.OPEN, Status.IN_PROGRESS)}
    assert shown == waiting
    tabs = {tab["label"]: tab["count"] for tab in response.context["tabs"]}
    assert tabs == {"All open": 3, "Needs review": 1, "Open": 1, "In progress": 1}
    needs_review = browser.get("/dashboard/?status=needs_review").context["page"]
    assert [c.status for c in needs_review] == [Status.NEEDS_REVIEW]


def test_the_queue_filters_by_source_and_assignee_and_sorts_oldest_first(
    browser: Client, desk: list[Conversation], staff_user: Any
) -> None:
    services.conversation_update(conversation=desk[2], actor=staff_user, changes={"assigned_to": staff_user})
    mine = browser.get("/dashboard/?assigned_to=me").context["page"]
    assert [c.pk for c in mine] == [desk[2].pk]
    unassigned = {c.pk for c in browser.get("/dashboard/?assigned_to=none").context["page"]}
    assert desk[2].pk not in unassigned and unassigned
    web = browser.get("/dashboard/?source=web").context["page"]
    assert {c.source for c in web} == {"web"}
    oldest = [c.pk for c in browser.get("/dashboard/?order=oldest").context["page"]]
    newest = [c.pk for c in browser.get("/dashboard/?order=newest").context["page"]]
    assert oldest == list(reversed(newest))


def test_the_ticket_page_shows_the_thread_history_and_escalation(browser: Client, desk: list[Conversation]) -> None:
    conversation = desk[1]
    response = browser.get(f"/dashboard/conversations/{conversation.pk}/")
    html = response.content.decode()
    assert [t.role for t in response.context["turns"]] == ["user", "assistant", "user", "assistant"]
    assert "how much is it" in html
    assert "Reply pointed to the support email" in html
    assert "escalated here" in html
    assert "$" in html and "in 40" in html  # tokens and cost per turn
    assert [e.field for e in response.context["events"]][:2] == ["escalated", "status"]


def test_ticket_actions_change_the_ticket_and_write_events(
    browser: Client, desk: list[Conversation], staff_user: Any
) -> None:
    conversation = desk[2]
    url = f"/dashboard/conversations/{conversation.pk}/"
    before = TicketEvent.objects.filter(conversation=conversation).count()
    assert browser.post(url, {"action": "status", "status": "closed"}).status_code == 302
    assert browser.post(url, {"action": "assign", "assigned_to": str(staff_user.pk)}).status_code == 302
    assert browser.post(url, {"action": "notes", "notes": "Called back"}).status_code == 302
    assert browser.post(url, {"action": "contact", "contact_email": "amy@example.com"}).status_code == 302
    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.status, stored.assigned_to_id, stored.notes, stored.contact_email) == (
        Status.CLOSED,
        staff_user.pk,
        "Called back",
        "amy@example.com",
    )
    events = list(TicketEvent.objects.filter(conversation=conversation).order_by("created_at", "pk"))[before:]
    assert [e.field for e in events] == ["status", "assigned_to", "notes", "contact_email"]
    assert {e.actor_label for e in events} == {"agent"}
    assert conversation.pk not in {c.pk for c in browser.get("/dashboard/").context["page"]}


def test_ticket_actions_refuse_bad_input_and_change_nothing(browser: Client, desk: list[Conversation]) -> None:
    url = f"/dashboard/conversations/{desk[2].pk}/"
    assert browser.post(url, {"action": "status", "status": "gone"}).status_code == 400
    assert browser.post(url, {"action": "contact", "contact_email": "not-an-email"}).status_code == 400
    assert browser.post(url, {"action": "assign", "assigned_to": "999999"}).status_code == 400
    assert browser.post(url, {"action": "explode"}).status_code == 400
    assert browser.get("/dashboard/conversations/not-an-id/").status_code == 404
    stored = Conversation.objects.get(pk=desk[2].pk)
    assert (stored.status, stored.contact_email, stored.assigned_to_id) == (Status.IN_PROGRESS, "", None)


def test_each_analytics_figure_links_to_exactly_the_tickets_it_counts(
    browser: Client, desk: list[Conversation]
) -> None:
    response = browser.get("/dashboard/analytics/?days=7")
    context = response.context
    data = context["data"]
    assert data["total_conversations"] == 7
    for card in context["cards"]:
        assert listed(browser, card["url"])["conversations"] == card["count"], card["label"]
    csat = next(card for card in context["cards"] if card["label"].startswith("CSAT"))
    assert (csat["count"], csat["value"]) == (3, "66.67%")
    every = next(card for card in context["cards"] if card["label"] == "Total cost")
    totals = listed(browser, every["url"])
    assert totals["cost_micros"] == data["total_cost_micros"]
    assert totals["messages"] == data["total_messages"]

    tables = context["tables"]
    for row in tables["questions"] + tables["reasons"] + tables["statuses"]:
        assert listed(browser, row["url"])["conversations"] == row["count"], row
    for row in tables["sources"]:
        source_totals = listed(browser, row["url"])
        assert source_totals["conversations"] == row["conversations"], row
        assert source_totals["cost_micros"] == row["cost_micros"], row
        assert listed(browser, row["escalated_url"])["conversations"] == row["escalated"], row
    for row in tables["models"]:
        assert listed(browser, row["url"])["conversations"] == row["conversations"], row

    cost_by_day = [d["cost_micros"] for d in data["cost_by_day"]]
    for chart, counts in zip(context["charts"], context["bar_counts"], strict=True):
        assert len(chart.bars) == 7
        for index, (bar, count) in enumerate(zip(chart.bars, counts, strict=True)):
            bar_totals = listed(browser, bar.url)
            assert bar_totals["conversations"] == count, (chart.title, bar.title)
            if chart.title == "Cost per day":
                assert bar_totals["cost_micros"] == cost_by_day[index]
    assert sum(context["bar_counts"][0]) == 7


def test_the_analytics_page_draws_three_charts_with_data(browser: Client, desk: list[Conversation]) -> None:
    html = browser.get("/dashboard/analytics/?days=30").content.decode()
    assert html.count("<svg") == 3
    assert 'class="bar"' in html
    response = browser.get("/dashboard/analytics/?days=30")
    assert all(chart.has_data for chart in response.context["charts"])


def test_analytics_take_a_date_range_and_refuse_a_reversed_one(browser: Client, desk: list[Conversation]) -> None:
    from django.utils import timezone

    today = timezone.now().date()
    ok = browser.get(f"/dashboard/analytics/?date_from={today.replace(day=1)}&date_to={today}")
    assert ok.status_code == 200
    assert ok.context["data"]["date_to"] == today.isoformat()
    bad = browser.get(f"/dashboard/analytics/?date_from={today}&date_to=2000-01-01")
    assert bad.status_code == 400
    assert "date_from" in bad.context["form"].errors


def test_the_list_refuses_bad_filters(browser: Client) -> None:
    assert browser.get("/dashboard/conversations/?status=lost").status_code == 400
    assert browser.get("/dashboard/conversations/?created_from=yesterday").status_code == 400
    assert browser.get("/dashboard/conversations.csv?created_from=2026-02-01&created_to=2026-01-01").status_code == 400


def test_the_csv_export_has_one_row_per_filtered_conversation_with_its_figures(
    browser: Client, desk: list[Conversation]
) -> None:
    response = browser.get("/dashboard/conversations.csv?source=web&order=oldest")
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    web = sorted((c for c in desk if c.source == "web"), key=lambda c: c.created_at)
    assert [row["id"] for row in rows] == [str(c.pk) for c in web]
    first = rows[0]
    stored = Conversation.objects.get(pk=web[0].pk)
    assert int(first["messages"]) == stored.message_count
    assert int(first["cost_micros"]) == stored.cost_micros
    assert first["cost_usd"] == f"{stored.cost_micros / 1_000_000:.6f}"
    assert int(first["input_tokens"]) == stored.total_input_tokens
    assert first["status"] == stored.status and first["source"] == "web"


def test_the_csv_export_defuses_spreadsheet_formulas(browser: Client, make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    services.message_log(conversation=conversation, turns=[services.Turn(role="user", content="=HYPERLINK(1)")])
    body = b"".join(browser.get("/dashboard/conversations.csv").streaming_content).decode()
    assert "'=HYPERLINK(1)" in body


def test_the_login_page_signs_staff_in_to_the_dashboard(staff_user: Any) -> None:
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "agent", "password": "correct-horse-battery"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200
