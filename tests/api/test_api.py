"""The support API contract: the seed's six endpoints, auth, and bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from support import services
from support.models import Conversation, Message, Status, TicketEvent

pytestmark = pytest.mark.django_db

BASE = "/api/support"
#: The seed widget logs its own turns; that flow is off unless the deployment turns it on.
SEED_WIDGET = override_settings(SUPPORT_CLIENT_LOGGING="seed")


def create(client: APIClient, **body: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/conversations", body or {"source": "web"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def log_pair(client: APIClient, conversation_id: str, **body: Any) -> Any:
    payload = {
        "user_message": "How much does Rezvo cost?",
        "assistant_message": "Plans start at £0.",
        "input_tokens": 25,
        "output_tokens": 60,
        "is_escalation": False,
    } | {k: v for k, v in body.items() if not k.startswith("HTTP_")}
    headers = {k: v for k, v in body.items() if k.startswith("HTTP_")}
    return client.post(f"{BASE}/conversations/{conversation_id}/messages", payload, format="json", **headers)


# --- The seed's own test sequence ------------------------------------------------------------
@SEED_WIDGET
def test_the_seed_sequence_costs_0_00057_and_is_escalated(anon: APIClient, widget: Any, staff: APIClient) -> None:
    created = create(anon, source="web", page_url="https://rezvo.co.uk/pricing")
    client = widget(created["token"])
    assert log_pair(client, created["id"]).status_code == 201
    response = log_pair(
        client,
        created["id"],
        user_message="I still can't log in",
        assistant_message="Please email support@rezvo.co.uk",
        input_tokens=20,
        output_tokens=45,
        is_escalation=True,
    )
    assert response.status_code == 201

    listed = staff.get(f"{BASE}/conversations").json()["results"]
    assert len(listed) == 1
    conversation = listed[0]
    assert conversation["total_input_tokens"] == 45
    assert conversation["total_output_tokens"] == 105
    assert conversation["cost_micros"] == 570
    assert conversation["estimated_cost_usd"] == 0.00057
    assert conversation["escalated"] is True
    assert conversation["status"] == "needs_review"
    assert conversation["message_count"] == 4

    tickets = staff.get(f"{BASE}/tickets").json()["results"]
    assert [t["id"] for t in tickets] == [created["id"]]
    assert [m["role"] for m in tickets[0]["messages"]] == ["user", "assistant", "user", "assistant"]

    analytics = staff.get(f"{BASE}/analytics?days=30").json()
    assert analytics["total_conversations"] == 1
    assert analytics["total_messages"] == 4
    assert analytics["escalated_pct"] == 100.0
    assert analytics["auto_resolved_pct"] == 0.0
    assert analytics["total_cost_usd"] == 0.00057


# --- 1. Create -------------------------------------------------------------------------------
def test_it_creates_a_conversation_with_a_secret_shown_once(anon: APIClient, staff: APIClient) -> None:
    created = create(anon, source="app_owner", page_url="https://rezvo.co.uk/app", user_id="u1", business_id="b7")
    assert created["status"] == "auto_resolved"
    assert created["source"] == "app_owner"
    assert isinstance(created["id"], str)
    assert len(created["token"]) >= 32
    stored = Conversation.objects.get(pk=Conversation._meta.pk.to_python(created["id"]))
    assert created["token"] not in stored.token_hash
    detail = staff.get(f"{BASE}/conversations/{created['id']}").json()
    assert "token" not in detail and "token_hash" not in detail


def test_it_takes_the_user_agent_from_the_header_when_the_body_has_none(anon: APIClient, staff: APIClient) -> None:
    response = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json", HTTP_USER_AGENT="Mozilla/5.0 Test")
    detail = staff.get(f"{BASE}/conversations/{response.json()['id']}").json()
    assert detail["user_agent"] == "Mozilla/5.0 Test"


def test_it_strips_line_breaks_from_the_user_agent(anon: APIClient, staff: APIClient) -> None:
    created = create(anon, user_agent="Bot\r\nX-Injected: yes")
    detail = staff.get(f"{BASE}/conversations/{created['id']}").json()
    assert "\n" not in detail["user_agent"] and "\r" not in detail["user_agent"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "fax"}, "source"),
        ({"page_url": "not a url"}, "page_url"),
        ({"page_url": "https://x.io/\r\nSet-Cookie: a=b"}, "page_url"),
        ({"user_id": "x" * 129}, "user_id"),
    ],
)
def test_it_rejects_bad_conversation_fields_naming_the_field(anon: APIClient, body: dict, field: str) -> None:
    response = anon.post(f"{BASE}/conversations", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Conversation.objects.count() == 0


def test_it_rejects_a_body_that_is_not_json(anon: APIClient) -> None:
    response = anon.post(f"{BASE}/conversations", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]
    response = anon.post(f"{BASE}/conversations", "source=web", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert Conversation.objects.count() == 0


# --- 2. Log messages -------------------------------------------------------------------------
@SEED_WIDGET
def test_it_logs_a_single_turn_with_role_and_content(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    response = widget(created["token"]).post(
        f"{BASE}/conversations/{created['id']}/messages",
        {"role": "user", "content": "Hello?", "input_tokens": 10},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["conversation"]["message_count"] == 1
    assert "cost_micros" not in body["messages"][0], "the widget must not see costs"
    conversation = Conversation.objects.get()
    assert conversation.summary == "Hello?"
    assert conversation.cost_micros == 10


def test_it_refuses_to_log_without_the_conversation_token(anon: APIClient) -> None:
    created = create(anon)
    response = log_pair(anon, created["id"])
    assert response.status_code == 404  # the same answer as an unknown id: nothing to enumerate
    assert Message.objects.count() == 0


def test_it_refuses_another_conversations_token(anon: APIClient, widget: Any) -> None:
    mine, theirs = create(anon), create(anon)
    response = log_pair(widget(theirs["token"]), mine["id"])
    assert response.status_code == 404
    assert widget(theirs["token"]).get(f"{BASE}/conversations/{mine['id']}").status_code == 404
    assert Message.objects.count() == 0


def test_staff_can_log_without_a_token(anon: APIClient, staff: APIClient) -> None:
    created = create(anon)
    response = log_pair(staff, created["id"])
    assert response.status_code == 201
    assert response.json()["messages"][1]["cost_micros"] == 300


@SEED_WIDGET
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": "many"}, "output_tokens"),
        ({"user_message": "x" * 32001}, "user_message"),
        ({"assistant_message": None}, "assistant_message"),
        ({"is_escalation": "perhaps"}, "is_escalation"),
    ],
)
def test_it_rejects_bad_message_fields_without_storing_anything(
    anon: APIClient, widget: Any, body: dict, field: str
) -> None:
    created = create(anon)
    client = widget(created["token"])
    assert log_pair(client, created["id"]).status_code == 201
    response = log_pair(client, created["id"], **body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    conversation = Conversation.objects.get()
    assert conversation.message_count == 2
    assert Message.objects.count() == 2


@SEED_WIDGET
def test_it_requires_role_and_content_when_not_sending_a_pair(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    response = widget(created["token"]).post(
        f"{BASE}/conversations/{created['id']}/messages", {"content": "hi"}, format="json"
    )
    assert response.status_code == 400
    assert "role" in response.json()["errors"]


@SEED_WIDGET
def test_content_of_exactly_32000_characters_is_accepted(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    response = widget(created["token"]).post(
        f"{BASE}/conversations/{created['id']}/messages", {"role": "user", "content": "x" * 32000}, format="json"
    )
    assert response.status_code == 201


@SEED_WIDGET
def test_an_idempotency_key_makes_a_retry_log_once(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    client = widget(created["token"])
    first = log_pair(client, created["id"], HTTP_IDEMPOTENCY_KEY="turn-1")
    again = log_pair(client, created["id"], HTTP_IDEMPOTENCY_KEY="turn-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 2
    assert Conversation.objects.get().message_count == 2
    assert log_pair(client, created["id"], HTTP_IDEMPOTENCY_KEY="turn-2").status_code == 201
    assert Message.objects.count() == 4


@SEED_WIDGET
def test_a_reused_idempotency_key_with_another_body_is_refused(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    client = widget(created["token"])
    log_pair(client, created["id"], HTTP_IDEMPOTENCY_KEY="k")
    response = log_pair(client, created["id"], user_message="something else", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert Message.objects.count() == 2


@SEED_WIDGET
def test_an_escalation_flags_the_conversation_and_writes_history(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    log_pair(widget(created["token"]), created["id"], is_escalation=True)
    conversation = Conversation.objects.get()
    assert conversation.escalated is True
    assert conversation.status == Status.NEEDS_REVIEW
    assert conversation.escalation_reason == "widget_flag"
    fields = set(TicketEvent.objects.values_list("field", flat=True))
    assert {"escalated", "status", "escalation_reason"} <= fields


def test_an_unknown_model_is_priced_as_the_default_and_says_so(anon: APIClient, staff: APIClient) -> None:
    created = create(anon)
    response = log_pair(staff, created["id"], model="claude-future-9")
    messages = response.json()["messages"]
    assert all(m["price_fallback"] for m in messages)
    assert messages[1]["model"] == "claude-future-9"
    assert messages[1]["cost_micros"] == 300


def test_sonnet_turns_are_priced_with_sonnets_row(anon: APIClient, staff: APIClient) -> None:
    created = create(anon)
    response = log_pair(staff, created["id"], model="claude-sonnet-4-5")
    messages = response.json()["messages"]
    assert [m["cost_micros"] for m in messages] == [75, 900]
    assert not any(m["price_fallback"] for m in messages)


# --- 3. Update -------------------------------------------------------------------------------
def test_staff_close_a_ticket_and_history_records_it(
    anon: APIClient, staff: APIClient, staff_user: Any, other_staff: Any
) -> None:
    created = create(anon)
    url = f"{BASE}/conversations/{created['id']}"
    response = staff.patch(
        url,
        {"status": "closed", "notes": "Resolved via email", "assigned_to": str(other_staff.pk)},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "closed"
    assert body["closed_at"] is not None
    assert body["assigned_to"]["username"] == "lead"
    events = {e.field: e for e in TicketEvent.objects.all()}
    assert events["status"].old_value == "auto_resolved"
    assert events["status"].new_value == "closed"
    assert events["status"].actor_label == "agent"
    assert events["assigned_to"].new_value == "lead"
    assert events["notes"].new_value == "Resolved via email"

    reopened = staff.patch(url, {"status": "open"}, format="json").json()
    assert reopened["closed_at"] is None


def test_an_update_that_changes_nothing_writes_no_event(anon: APIClient, staff: APIClient) -> None:
    created = create(anon)
    staff.patch(f"{BASE}/conversations/{created['id']}", {"status": "auto_resolved"}, format="json")
    assert TicketEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "done"}, "status"),
        ({"assigned_to": "999999"}, "assigned_to"),
        ({"assigned_to": "not-an-id"}, "assigned_to"),
        ({"contact_email": "nope"}, "contact_email"),
        ({"escalated": "sometimes"}, "escalated"),
    ],
)
def test_it_rejects_bad_updates_naming_the_field(anon: APIClient, staff: APIClient, body: dict, field: str) -> None:
    created = create(anon)
    response = staff.patch(f"{BASE}/conversations/{created['id']}", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Conversation.objects.get().status == Status.AUTO_RESOLVED
    assert TicketEvent.objects.count() == 0


def test_a_non_staff_user_cannot_assign_to_themselves(anon: APIClient, staff: APIClient, customer_user: Any) -> None:
    created = create(anon)
    response = staff.patch(
        f"{BASE}/conversations/{created['id']}", {"assigned_to": str(customer_user.pk)}, format="json"
    )
    assert response.status_code == 400


def test_the_widget_cannot_update_its_own_conversation(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    response = widget(created["token"]).patch(
        f"{BASE}/conversations/{created['id']}", {"status": "closed"}, format="json"
    )
    assert response.status_code in (401, 403)
    assert Conversation.objects.get().status == Status.AUTO_RESOLVED


# --- 4. List ---------------------------------------------------------------------------------
def test_the_list_filters_and_pages_newest_first(make_conversation: Any, staff: APIClient) -> None:
    now = timezone.now()
    old, _ = make_conversation(source="web")
    Conversation.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=10))
    app, _ = make_conversation(source="app_owner")
    web, _ = make_conversation(source="web")
    services.message_log(
        conversation=web,
        turns=[services.Turn(role="user", content="Refund for booking 42?")],
        is_escalation=True,
    )

    ids = [c["id"] for c in staff.get(f"{BASE}/conversations").json()["results"]]
    assert ids == [str(web.pk), str(app.pk), str(old.pk)]
    assert [c["id"] for c in staff.get(f"{BASE}/conversations?source=app_owner").json()["results"]] == [str(app.pk)]
    assert [c["id"] for c in staff.get(f"{BASE}/conversations?escalated=true").json()["results"]] == [str(web.pk)]
    assert [c["id"] for c in staff.get(f"{BASE}/conversations?status=needs_review").json()["results"]] == [str(web.pk)]
    assert [c["id"] for c in staff.get(f"{BASE}/conversations?q=booking 42").json()["results"]] == [str(web.pk)]
    since = (now - timedelta(days=1)).date().isoformat()
    assert len(staff.get(f"{BASE}/conversations?created_from={since}").json()["results"]) == 2
    page = staff.get(f"{BASE}/conversations?page_size=2&page=2").json()
    assert page["count"] == 3
    assert [c["id"] for c in page["results"]] == [str(old.pk)]


def test_search_finds_words_in_later_messages_not_just_the_summary(make_conversation: Any, staff: APIClient) -> None:
    conversation, _ = make_conversation()
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role="user", content="hello"),
            services.Turn(role="assistant", content="Try the Stripe dashboard"),
        ],
    )
    make_conversation()
    results = staff.get(f"{BASE}/conversations?q=stripe").json()["results"]
    assert [c["id"] for c in results] == [str(conversation.pk)]


@pytest.mark.parametrize(
    "query",
    ["status=done", "source=fax", "escalated=maybe", "created_from=yesterday", "page_size=1000", "page=0"],
)
def test_the_list_rejects_bad_filters(staff: APIClient, query: str) -> None:
    response = staff.get(f"{BASE}/conversations?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["errors"]


def test_a_page_past_the_end_is_404(staff: APIClient) -> None:
    assert staff.get(f"{BASE}/conversations?page=5").status_code == 404


# --- 5. Detail -------------------------------------------------------------------------------
@SEED_WIDGET
def test_the_widget_reads_its_transcript_without_staff_fields(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    client = widget(created["token"])
    log_pair(client, created["id"])
    detail = client.get(f"{BASE}/conversations/{created['id']}").json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert "notes" not in detail and "assigned_to" not in detail and "cost_micros" not in detail


@SEED_WIDGET
def test_staff_read_the_transcript_with_costs(anon: APIClient, widget: Any, staff: APIClient) -> None:
    created = create(anon)
    log_pair(widget(created["token"]), created["id"])
    detail = staff.get(f"{BASE}/conversations/{created['id']}").json()
    assert [m["cost_micros"] for m in detail["messages"]] == [25, 300]
    assert detail["notes"] == ""


@pytest.mark.parametrize("bad_id", ["nope", "123456789012345678901234", "0", "-1", "%00", "6998e620a0c33dd94b554ea9"])
def test_unknown_or_malformed_ids_are_404(staff: APIClient, bad_id: str) -> None:
    assert staff.get(f"{BASE}/conversations/{bad_id}").status_code == 404
    assert staff.patch(f"{BASE}/conversations/{bad_id}", {"status": "closed"}, format="json").status_code == 404
    assert log_pair(staff, bad_id).status_code == 404


# --- 6. Tickets ------------------------------------------------------------------------------
def _ticket_with_messages(make_conversation: Any, n: int) -> None:
    for i in range(n):
        conversation, _ = make_conversation()
        services.message_log(
            conversation=conversation,
            turns=[services.Turn(role="user", content=f"q{i}"), services.Turn(role="assistant", content="a")],
            is_escalation=True,
        )


def test_tickets_use_the_same_number_of_queries_for_any_page_size(
    make_conversation: Any, staff: APIClient, staff_user: Any
) -> None:
    _ticket_with_messages(make_conversation, 12)
    make_conversation()  # auto-resolved: not a ticket

    def queries(page_size: int) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            response = staff.get(f"{BASE}/tickets?page_size={page_size}")
        assert response.status_code == 200
        return len(ctx.captured_queries), len(response.json()["results"])

    small, small_n = queries(2)
    large, large_n = queries(12)
    assert (small_n, large_n) == (2, 12)
    assert small == large


def test_tickets_list_only_conversations_that_need_a_human(make_conversation: Any, staff: APIClient) -> None:
    _ticket_with_messages(make_conversation, 1)
    open_one, _ = make_conversation()
    Conversation.objects.filter(pk=open_one.pk).update(status=Status.IN_PROGRESS)
    closed, _ = make_conversation()
    Conversation.objects.filter(pk=closed.pk).update(status=Status.CLOSED)
    make_conversation()
    results = staff.get(f"{BASE}/tickets").json()["results"]
    assert {r["status"] for r in results} == {"needs_review", "in_progress"}
    assert len(results[-1]["messages"]) == 2


# --- 7. Analytics ----------------------------------------------------------------------------
def test_analytics_fill_every_day_of_the_window_and_group_questions(make_conversation: Any, staff: APIClient) -> None:
    for text in ("How much is it?", "how much is it", "Where is my booking?"):
        conversation, _ = make_conversation(source="web")
        services.message_log(conversation=conversation, turns=[services.Turn(role="user", content=text)])
    old, _ = make_conversation(source="app_owner")
    Conversation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    services.rollups_rebuild()  # rollups follow services; a backdated row needs a rebuild

    data = staff.get(f"{BASE}/analytics?days=7").json()
    assert len(data["conversations_by_day"]) == 7
    assert data["conversations_by_day"][-1] == {"date": timezone.now().date().isoformat(), "count": 3}
    assert sum(d["count"] for d in data["conversations_by_day"]) == 4
    assert data["top_questions"][0] == {"question": "how much is it", "count": 2}
    assert {s["source"]: s["conversations"] for s in data["by_source"]} == {"app_owner": 1, "web": 3}
    assert data["auto_resolved_pct"] == 100.0

    assert staff.get(f"{BASE}/analytics?days=1").json()["total_conversations"] == 3


@pytest.mark.parametrize("days", ["0", "366", "abc", "-5"])
def test_analytics_reject_days_outside_1_to_365(staff: APIClient, days: str) -> None:
    response = staff.get(f"{BASE}/analytics?days={days}")
    assert response.status_code == 400
    assert "days" in response.json()["errors"]


# --- Auth on staff data ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["conversations", "tickets", "analytics"])
def test_staff_endpoints_refuse_anonymous_and_non_staff_callers(anon: APIClient, customer_user: Any, path: str) -> None:
    response = anon.get(f"{BASE}/{path}")
    assert response.status_code == 401
    assert response.json()["detail"]
    customer = APIClient()
    customer.force_authenticate(customer_user)
    assert customer.get(f"{BASE}/{path}").status_code == 403


def test_a_widget_token_does_not_open_staff_endpoints(anon: APIClient, widget: Any) -> None:
    created = create(anon)
    client = widget(created["token"])
    assert client.get(f"{BASE}/tickets").status_code == 401
    assert client.get(f"{BASE}/conversations").status_code == 401


def test_browser_sessions_need_csrf_for_writes(anon: APIClient, staff_user: Any) -> None:
    created = create(anon)
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(staff_user)  # a session like a real log-in (axes needs a request to check a password)
    assert browser.get(f"{BASE}/tickets").status_code == 200
    response = browser.patch(f"{BASE}/conversations/{created['id']}", {"status": "closed"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Conversation.objects.get().status == Status.AUTO_RESOLVED


def test_unsupported_methods_get_405_json(staff: APIClient) -> None:
    response = staff.delete(f"{BASE}/conversations")
    assert response.status_code == 405
    assert "DELETE" in json.loads(response.content)["detail"]
