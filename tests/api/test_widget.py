"""The chat widget's server side: rating, contact address, public config, CSAT, the demo page and the assets."""

from __future__ import annotations

import gzip
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from rezvo_support import env
from support import selectors, services
from support.models import Conversation, EventField, Rating, Role, TicketEvent

BASE = "/api/support"
WIDGET_GZIP_BUDGET = 25 * 1024


def _pair(conversation: Conversation, user: str = "How much is it?", bot: str = "Plans start at £0.") -> list[Any]:
    return services.message_log(
        conversation=conversation,
        turns=[services.Turn(role=Role.USER, content=user), services.Turn(role=Role.ASSISTANT, content=bot)],
    )


def _events(conversation: Conversation, field: str) -> list[TicketEvent]:
    return list(TicketEvent.objects.filter(conversation=conversation, field=field).order_by("created_at", "pk"))


# --- POST conversations/{id}/rating ----------------------------------------------------------
@pytest.mark.django_db
def test_the_widget_rates_a_reply_and_the_rating_is_stored_with_a_ticket_event(make_conversation: Any, widget: Any):
    conversation, token = make_conversation()
    _, reply = _pair(conversation)
    response = widget(token).post(
        f"{BASE}/conversations/{conversation.pk}/rating", {"rating": "up", "message_id": str(reply.pk)}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rating"] == "up" and body["rated_message_id"] == str(reply.pk)
    conversation.refresh_from_db()
    assert conversation.rating == Rating.UP
    assert conversation.rated_message_id == reply.pk
    assert conversation.rated_at is not None
    [event] = _events(conversation, EventField.RATING)
    assert (event.old_value, event.new_value, event.actor_label, event.actor_id) == ("", "up", "widget", None)


@pytest.mark.django_db
def test_a_re_rate_overwrites_and_logs_the_change(make_conversation: Any, widget: Any) -> None:
    conversation, token = make_conversation()
    _pair(conversation)
    client = widget(token)
    url = f"{BASE}/conversations/{conversation.pk}/rating"
    assert client.post(url, {"rating": "up"}, format="json").status_code == 200
    assert client.post(url, {"rating": "down"}, format="json").status_code == 200
    assert client.post(url, {"rating": "down"}, format="json").status_code == 200
    conversation.refresh_from_db()
    assert conversation.rating == Rating.DOWN
    changes = [(e.old_value, e.new_value) for e in _events(conversation, EventField.RATING)]
    assert changes == [("", "up"), ("up", "down")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "rating"),
        ({"rating": "meh"}, "rating"),
        ({"rating": "up", "message_id": "not-an-id"}, "message_id"),
        ({"rating": "up", "message_id": "999999"}, "message_id"),
    ],
)
def test_it_rejects_a_bad_rating_naming_the_field(make_conversation: Any, widget: Any, body: dict, field: str) -> None:
    conversation, token = make_conversation()
    _pair(conversation)
    response = widget(token).post(f"{BASE}/conversations/{conversation.pk}/rating", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    conversation.refresh_from_db()
    assert conversation.rating == "" and not _events(conversation, EventField.RATING)


@pytest.mark.django_db
def test_it_refuses_to_rate_the_customers_own_turn_or_another_conversations_reply(
    make_conversation: Any, widget: Any
) -> None:
    conversation, token = make_conversation()
    user_turn, _ = _pair(conversation)
    other, _ = make_conversation()
    _, other_reply = _pair(other)
    url = f"{BASE}/conversations/{conversation.pk}/rating"
    for message in (user_turn, other_reply):
        response = widget(token).post(url, {"rating": "down", "message_id": str(message.pk)}, format="json")
        assert response.status_code == 400
        assert "message_id" in response.json()["errors"]


@pytest.mark.django_db
def test_rating_needs_the_conversations_token(make_conversation: Any, anon: APIClient, widget: Any) -> None:
    conversation, _ = make_conversation()
    _, other_token = make_conversation()
    url = f"{BASE}/conversations/{conversation.pk}/rating"
    assert anon.post(url, {"rating": "up"}, format="json").status_code == 404
    assert widget(other_token).post(url, {"rating": "up"}, format="json").status_code == 404
    assert widget("x").post(f"{BASE}/conversations/nope/rating", {"rating": "up"}, format="json").status_code == 404
    conversation.refresh_from_db()
    assert conversation.rating == ""


@pytest.mark.django_db
def test_staff_may_record_a_rating_and_are_named_in_the_history(
    make_conversation: Any, staff: APIClient, staff_user: Any
) -> None:
    conversation, _ = make_conversation()
    response = staff.post(f"{BASE}/conversations/{conversation.pk}/rating", {"rating": "down"}, format="json")
    assert response.status_code == 200
    [event] = _events(conversation, EventField.RATING)
    assert event.actor_id == staff_user.pk and event.actor_label == "agent"


@pytest.mark.django_db
def test_the_service_refuses_an_unknown_rating(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    with pytest.raises(ValueError, match="rating"):
        services.conversation_rate(conversation=conversation, rating="sideways")


# --- POST conversations/{id}/contact ---------------------------------------------------------
@pytest.mark.django_db
def test_the_widget_leaves_a_contact_email_that_staff_see_with_its_history(
    make_conversation: Any, widget: Any, staff: APIClient
) -> None:
    conversation, token = make_conversation()
    response = widget(token).post(
        f"{BASE}/conversations/{conversation.pk}/contact", {"email": " diner@example.com "}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["contact_email"] == "diner@example.com"
    assert "notes" not in response.json()  # the customer's view, not the staff one
    detail = staff.get(f"{BASE}/conversations/{conversation.pk}").json()
    assert detail["contact_email"] == "diner@example.com"
    [event] = _events(conversation, EventField.CONTACT_EMAIL)
    assert (event.old_value, event.new_value, event.actor_label) == ("", "diner@example.com", "widget")


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"email": ""}, {"email": "not-an-email"}, {"email": "a@b.c\r\nBcc: x@y.z"}])
def test_it_rejects_a_bad_contact_email_and_changes_nothing(make_conversation: Any, widget: Any, body: dict) -> None:
    conversation, token = make_conversation()
    response = widget(token).post(f"{BASE}/conversations/{conversation.pk}/contact", body, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["errors"]
    conversation.refresh_from_db()
    assert conversation.contact_email == "" and not _events(conversation, EventField.CONTACT_EMAIL)


@pytest.mark.django_db
def test_contact_needs_the_conversations_token(make_conversation: Any, anon: APIClient) -> None:
    conversation, _ = make_conversation()
    url = f"{BASE}/conversations/{conversation.pk}/contact"
    assert anon.post(url, {"email": "a@example.com"}, format="json").status_code == 404


@pytest.mark.django_db
def test_the_widget_sees_its_rating_and_contact_when_it_restores_the_transcript(
    make_conversation: Any, widget: Any
) -> None:
    conversation, token = make_conversation()
    _pair(conversation)
    services.conversation_rate(conversation=conversation, rating=Rating.UP)
    services.conversation_contact_set(conversation=conversation, email="diner@example.com")
    body = widget(token).get(f"{BASE}/conversations/{conversation.pk}").json()
    assert body["rating"] == "up" and body["contact_email"] == "diner@example.com"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    assert "cost_micros" not in body["messages"][0]


# --- GET widget/config -----------------------------------------------------------------------
@pytest.mark.django_db
def test_the_widget_config_is_public_cacheable_and_comes_from_settings(anon: APIClient, settings: Any) -> None:
    settings.SUPPORT_WIDGET_TITLE = "Help desk"
    settings.SUPPORT_WIDGET_QUICK_QUESTIONS = ["Prices?", "Opening hours, please?"]
    settings.SUPPORT_WIDGET_PRIMARY_COLOUR = "#123abc"
    settings.SUPPORT_WIDGET_POSITION = "left"
    settings.SUPPORT_WIDGET_CONFIG_MAX_AGE_S = 120
    response = anon.get(f"{BASE}/widget/config")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=120"
    assert "Cookie" not in response.get("Vary", "")
    assert response.json() == {
        "title": "Help desk",
        "greeting": settings.SUPPORT_WIDGET_GREETING,
        "quick_questions": ["Prices?", "Opening hours, please?"],
        "primary_colour": "#123abc",
        "position": "left",
        "support_email": settings.SUPPORT_EMAIL,
        "max_message_chars": settings.SUPPORT_MAX_MESSAGE_CHARS,
    }


@pytest.mark.django_db
def test_the_widget_config_is_served_to_allowed_origins_only(anon: APIClient, settings: Any) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://www.example.com"]
    allowed = anon.get(f"{BASE}/widget/config", HTTP_ORIGIN="https://www.example.com")
    assert allowed["Access-Control-Allow-Origin"] == "https://www.example.com"
    other = anon.get(f"{BASE}/widget/config", HTTP_ORIGIN="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in other


def test_the_widget_settings_refuse_values_that_could_inject_css(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLOUR", "red;background:url(//x)")
    with pytest.raises(ImproperlyConfigured, match="COLOUR must be a hex colour"):
        env.env_hex_colour("COLOUR", "#000000")
    monkeypatch.setenv("COLOUR", "#0F766E")
    assert env.env_hex_colour("COLOUR", "#000000") == "#0f766e"
    monkeypatch.setenv("SIDE", "middle")
    with pytest.raises(ImproperlyConfigured, match="SIDE must be one of right, left"):
        env.env_choice("SIDE", "right", ("right", "left"))
    monkeypatch.setenv("QUESTIONS", "Hours, please? | Prices?|")
    assert env.env_list("QUESTIONS", sep="|") == ["Hours, please?", "Prices?"]


# --- CSAT in analytics -----------------------------------------------------------------------
@pytest.mark.django_db
def test_analytics_reports_csat_over_rated_conversations(make_conversation: Any, staff: APIClient) -> None:
    for rating in ("up", "up", "down", ""):
        conversation, _ = make_conversation()
        if rating:
            services.conversation_rate(conversation=conversation, rating=rating)
    old, _ = make_conversation()
    services.conversation_rate(conversation=old, rating="down")
    Conversation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=60))
    services.rollups_rebuild()  # the backdating bypassed the services that keep the rollups

    body = staff.get(f"{BASE}/analytics?days=30").json()
    assert body["rated_count"] == 3
    assert (body["rated_up_count"], body["rated_down_count"]) == (2, 1)
    assert body["csat_pct"] == 66.67
    # Drillable: the conversations behind the figure.
    rated = staff.get(f"{BASE}/conversations?rating=rated&created_from={body['date_from']}").json()
    assert rated["count"] == 3
    down = staff.get(f"{BASE}/conversations?rating=down&created_from={body['date_from']}").json()
    assert [c["rating"] for c in down["results"]] == ["down"]


@pytest.mark.django_db
def test_csat_is_null_when_nobody_rated(make_conversation: Any) -> None:
    make_conversation()
    summary = selectors.analytics_summary(days=7)
    assert summary["csat_pct"] is None and summary["rated_count"] == 0


@pytest.mark.django_db
def test_the_conversation_list_refuses_an_unknown_rating_filter(staff: APIClient) -> None:
    response = staff.get(f"{BASE}/conversations?rating=sideways")
    assert response.status_code == 400 and "rating" in response.json()["errors"]


# --- The demo page and the static assets -----------------------------------------------------
@pytest.mark.django_db
def test_the_demo_page_embeds_the_widget_pointed_at_this_host() -> None:
    response = Client().get("/widget/demo/", HTTP_HOST="localhost")
    assert response.status_code == 200
    html = response.content.decode()
    tag = re.search(r"<script src=\"([^\"]+)\" ([^>]*)></script>", html)
    assert tag is not None
    assert tag.group(1).endswith("support/widget.js")
    assert 'data-api="http://localhost"' in tag.group(2) and "async" in tag.group(2)


def _asset(name: str) -> bytes:
    path = finders.find(f"support/{name}")
    assert path, f"support/{name} is not a static file"
    return Path(path).read_bytes()


@pytest.mark.django_db
def test_the_widget_files_are_served_from_static() -> None:
    client = Client()
    for name, kind in (("widget.js", "javascript"), ("widget.css", "text/css")):
        response = client.get(f"{settings.STATIC_URL}support/{name}")
        assert response.status_code == 200
        assert kind in response["Content-Type"]
        assert b"".join(response.streaming_content) == _asset(name)


def test_the_widget_is_under_25_kb_gzipped() -> None:
    total = sum(len(gzip.compress(_asset(name), compresslevel=9)) for name in ("widget.js", "widget.css"))
    assert total < WIDGET_GZIP_BUDGET, f"widget.js + widget.css gzip to {total} bytes"


def test_the_widget_never_feeds_text_to_html_parsing_apis() -> None:
    # The browser XSS test proves behaviour; this keeps the rule from regressing silently in review.
    source = _asset("widget.js").decode()
    for api in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert api not in source.split("*/", 1)[1], api


def test_the_widget_makes_no_third_party_requests() -> None:
    source = _asset("widget.js").decode() + _asset("widget.css").decode()
    urls = set(re.findall(r"https?://[^\s\"'`)]+", source))
    allowed = {
        "http://www.w3.org/2000/svg",
        "https://support.example.com",
        "https://support.example.com/static/support/widget.js",
    }
    assert urls <= allowed, urls
    assert "@import" not in source


@pytest.mark.django_db
def test_an_allowed_site_may_send_the_token_to_the_widget_endpoints(
    anon: APIClient, settings: Any, make_conversation: Any
) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://www.example.com"]
    conversation, _ = make_conversation()
    for action in ("rating", "contact", "chat"):
        preflight = anon.options(
            f"{BASE}/conversations/{conversation.pk}/{action}",
            HTTP_ORIGIN="https://www.example.com",
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-conversation-token,idempotency-key",
        )
        assert preflight["Access-Control-Allow-Origin"] == "https://www.example.com"
        allowed = preflight["Access-Control-Allow-Headers"].lower()
        assert "x-conversation-token" in allowed and "idempotency-key" in allowed
