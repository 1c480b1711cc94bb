"""Hostile input: what a public endpoint on someone's website will be sent, and what it must refuse.

Every case checks the answer is a 4xx JSON error (never a 500) and that nothing was stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from support import services
from support.models import Conversation, Message, Status, TicketEvent

pytestmark = pytest.mark.django_db
BASE = "/api/support"
TURN = {"role": "user", "content": "hello"}


@pytest.fixture(autouse=True)
def _seed_widget_logging() -> Iterator[None]:
    """Hostile bodies go to the seed widget's logging endpoint, so that flow is on (it is off by default,
    and then every widget body there is a 403 before it is read)."""
    with override_settings(SUPPORT_CLIENT_LOGGING="seed"):
        yield


@pytest.fixture
def convo(make_conversation: Any) -> tuple[Conversation, str]:
    return make_conversation()


@pytest.fixture
def superuser(db: None, django_user_model: Any) -> Any:
    # A superuser: the admin's permission checks for plain staff differ on SecantusDB (N1).
    return django_user_model.objects.create_superuser(username="root", password="correct-horse-battery")


def stored() -> tuple[int, int, int]:
    return Conversation.objects.count(), Message.objects.count(), TicketEvent.objects.count()


def assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert body["detail"]
    return body


def post_raw(
    client: APIClient, path: str, body: bytes | str, content_type: str = "application/json", **extra: Any
) -> Any:
    return client.generic("POST", path, body, content_type=content_type, **extra)


# --- Oversized bodies ------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["create", "messages"])
def test_a_body_over_the_upload_limit_is_413_and_stores_nothing(
    endpoint: str, convo: tuple[Conversation, str], anon: APIClient, widget: Any
) -> None:
    conversation, token = convo
    before = stored()
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)
    if endpoint == "create":
        response = post_raw(anon, f"{BASE}/conversations", json.dumps({"user_id": padding}))
    else:
        body = json.dumps({"role": "user", "content": padding})
        response = post_raw(widget(token), f"{BASE}/conversations/{conversation.pk}/messages", body)
    assert "body" in assert_json_error(response, 413)["errors"]
    assert stored() == before


def test_a_message_one_character_over_the_limit_is_refused_by_name(
    convo: tuple[Conversation, str], widget: Any
) -> None:
    conversation, token = convo
    body = {"role": "user", "content": "y" * (settings.SUPPORT_MAX_MESSAGE_CHARS + 1)}
    response = widget(token).post(f"{BASE}/conversations/{conversation.pk}/messages", body, format="json")
    assert "content" in assert_json_error(response, 400)["errors"]
    assert Message.objects.count() == 0


# --- Deeply nested JSON ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        "[" * 50_000 + "]" * 50_000,
        '{"a":' * 20_000 + "1" + "}" * 20_000,
        '{"role": "user", "content": ' + "[" * 50_000 + "]" * 50_000 + "}",
    ],
    ids=["arrays", "objects", "inside-a-field"],
)
def test_json_nested_past_the_recursion_limit_is_a_400_not_a_crash(
    body: str, convo: tuple[Conversation, str], widget: Any
) -> None:
    conversation, token = convo
    response = post_raw(widget(token), f"{BASE}/conversations/{conversation.pk}/messages", body)
    assert "body" in assert_json_error(response, 400)["errors"]
    assert Message.objects.count() == 0


def test_moderately_nested_json_in_a_text_field_is_refused_by_name(
    convo: tuple[Conversation, str], widget: Any
) -> None:
    conversation, token = convo
    nested: Any = "deep"
    for _ in range(200):
        nested = {"x": [nested]}
    response = widget(token).post(
        f"{BASE}/conversations/{conversation.pk}/messages", {"role": "user", "content": nested}, format="json"
    )
    assert "content" in assert_json_error(response, 400)["errors"]
    assert Message.objects.count() == 0


# --- Invalid UTF-8 ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [b'{"role": "user", "content": "\xff\xfe"}', b'{"role": "user", "content": "caf\xc3"}', b"\xc0\xaf"],
    ids=["bad-start-byte", "truncated-sequence", "overlong-slash"],
)
def test_invalid_utf8_bodies_are_400_naming_the_body(body: bytes, convo: tuple[Conversation, str], widget: Any) -> None:
    conversation, token = convo
    response = post_raw(widget(token), f"{BASE}/conversations/{conversation.pk}/messages", body)
    assert "body" in assert_json_error(response, 400)["errors"]
    assert Message.objects.count() == 0


def test_invalid_utf8_in_the_path_and_query_is_handled(staff: APIClient) -> None:
    assert_json_error(staff.get(f"{BASE}/conversations/%FF%FE"), 404)
    response = staff.get(f"{BASE}/conversations?q=%FF%C3")
    assert response.status_code == 200
    assert response.json()["results"] == []


# --- Wrong content types ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "role=user content=hello"),
        ("application/x-www-form-urlencoded", "role=user&content=hello"),
        ("multipart/form-data; boundary=xyz", '--xyz\r\nContent-Disposition: form-data; name="role"\r\n\r\nuser\r\n'),
        ("application/xml", "<turn><role>user</role></turn>"),
        ("", '{"role": "user", "content": "hello"}'),
    ],
    ids=["text", "form", "multipart", "xml", "none"],
)
def test_bodies_that_are_not_json_are_415_and_store_nothing(
    content_type: str, body: str, convo: tuple[Conversation, str], anon: APIClient, widget: Any
) -> None:
    conversation, token = convo
    before = stored()
    response = post_raw(widget(token), f"{BASE}/conversations/{conversation.pk}/messages", body, content_type)
    assert "Content-Type" in assert_json_error(response, 415)["errors"]
    response = post_raw(anon, f"{BASE}/conversations", body, content_type)
    assert "Content-Type" in assert_json_error(response, 415)["errors"]
    assert stored() == before


# --- Ids of every wrong shape ----------------------------------------------------------------
WRONG_IDS = [
    "nope",
    "0",
    "-1",
    "1.0",
    "1e3",
    "0x1",
    "99999999999999999999999999",
    "507f1f77bcf86cd799439011",
    "507f1f77bcf86cd79943901",
    "zzzzzzzzzzzzzzzzzzzzzzzz",
    "%00",
    "%FF",
    "%2e%2e",
    "null",
    "[]",
    "{}",
    "a" * 500,
    "%E2%80%AE1",
]


def _variants_of(pk: Any) -> Iterator[str]:
    """Other spellings of a real id: each must be 404, not a second door to the same row."""
    raw = str(pk)
    yield f"%20{raw}"
    yield f"{raw}%20"
    yield f"0{raw}"
    yield f"+{raw}"
    yield f"{raw}%0A"
    if raw.isdigit():
        yield "".join(chr(0x0660 + int(d)) for d in raw)  # Arabic-Indic digits: int() reads them
    if raw.lower() != raw.upper():
        yield raw.upper()


def _attempts(client: APIClient, conversation_id: str, *, as_staff: bool = True) -> list[Any]:
    responses = [
        client.get(f"{BASE}/conversations/{conversation_id}"),
        client.post(f"{BASE}/conversations/{conversation_id}/messages", TURN, format="json"),
    ]
    if as_staff:
        responses.append(client.patch(f"{BASE}/conversations/{conversation_id}", {"status": "closed"}, format="json"))
    return responses


@pytest.mark.parametrize("bad_id", WRONG_IDS)
def test_ids_of_every_wrong_shape_are_404_json(bad_id: str, staff: APIClient, convo: tuple[Conversation, str]) -> None:
    before = stored()
    for response in _attempts(staff, bad_id):
        assert_json_error(response, 404)
    assert stored() == before


def test_other_spellings_of_a_real_id_are_404(staff: APIClient, widget: Any, convo: tuple[Conversation, str]) -> None:
    conversation, token = convo
    before = stored()
    variants = list(_variants_of(conversation.pk))
    assert len(variants) >= 6
    for variant in variants:
        for response in [*_attempts(staff, variant), *_attempts(widget(token), variant, as_staff=False)]:
            assert_json_error(response, 404)
    assert stored() == before
    assert Conversation.objects.get().status == Status.AUTO_RESOLVED


# --- Tokens of other conversations -----------------------------------------------------------
def test_a_token_only_opens_its_own_conversation(make_conversation: Any, widget: Any) -> None:
    mine, my_token = make_conversation()
    theirs, their_token = make_conversation()
    client = widget(my_token)
    assert_json_error(client.get(f"{BASE}/conversations/{theirs.pk}"), 404)
    assert_json_error(client.post(f"{BASE}/conversations/{theirs.pk}/messages", TURN, format="json"), 404)
    assert Message.objects.filter(conversation=theirs).count() == 0
    assert client.get(f"{BASE}/conversations/{mine.pk}").status_code == 200
    assert widget(their_token).get(f"{BASE}/conversations/{theirs.pk}").status_code == 200


@pytest.mark.parametrize(
    "forge",
    [
        lambda token, conversation: token.upper(),
        lambda token, conversation: token[:-1],
        lambda token, conversation: token + "x",
        lambda token, conversation: f" {token}",
        lambda token, conversation: f"Bearer {token}",
        lambda token, conversation: conversation.token_hash,
        lambda token, conversation: "x" * 10_000,
        lambda token, conversation: "\u00e9" * 43,
    ],
    ids=["upper", "truncated", "extended", "padded", "bearer", "the-stored-hash", "huge", "latin-1"],
)
def test_near_misses_of_a_token_are_refused(forge: Any, convo: tuple[Conversation, str], widget: Any) -> None:
    conversation, token = convo
    forged = forge(token, conversation)
    if forged == token:
        pytest.skip("the forgery equals the token for this value")
    client = widget(forged)
    assert_json_error(client.get(f"{BASE}/conversations/{conversation.pk}"), 404)
    assert_json_error(client.post(f"{BASE}/conversations/{conversation.pk}/messages", TURN, format="json"), 404)
    assert Message.objects.count() == 0


def test_a_widget_token_opens_no_staff_operation(convo: tuple[Conversation, str], widget: Any) -> None:
    conversation, token = convo
    client = widget(token)
    for response in (
        client.get(f"{BASE}/conversations"),
        client.get(f"{BASE}/tickets"),
        client.get(f"{BASE}/analytics"),
        client.patch(f"{BASE}/conversations/{conversation.pk}", {"status": "closed"}, format="json"),
    ):
        assert response.status_code in (401, 403)
        assert response.json()["detail"]
    conversation.refresh_from_db()
    assert conversation.status == Status.AUTO_RESOLVED


# --- CSRF on session-authenticated writes ----------------------------------------------------
def test_session_writes_without_the_csrf_token_are_refused(convo: tuple[Conversation, str], staff_user: Any) -> None:
    conversation, _ = convo
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    before = stored()
    response = browser.patch(f"{BASE}/conversations/{conversation.pk}", {"status": "closed"}, format="json")
    assert "CSRF" in assert_json_error(response, 403)["detail"]
    response = browser.post(f"{BASE}/conversations/{conversation.pk}/messages", TURN, format="json")
    assert "CSRF" in assert_json_error(response, 403)["detail"]
    assert stored() == before


def test_session_writes_with_the_csrf_token_go_through(convo: tuple[Conversation, str], staff_user: Any) -> None:
    conversation, _ = convo
    browser = APIClient(enforce_csrf_checks=True)
    browser.get("/admin/login/")  # the login form sets the csrftoken cookie
    browser.force_login(staff_user)
    csrf = browser.cookies["csrftoken"].value
    response = browser.patch(
        f"{BASE}/conversations/{conversation.pk}", {"status": "closed"}, format="json", HTTP_X_CSRFTOKEN=csrf
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == Status.CLOSED


# --- CORS ------------------------------------------------------------------------------------
LISTED = "https://shop.example.com"


@override_settings(CORS_ALLOWED_ORIGINS=[LISTED])
def test_cors_answers_a_listed_origin(anon: APIClient) -> None:
    response = anon.post(f"{BASE}/conversations", {}, format="json", HTTP_ORIGIN=LISTED)
    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == LISTED
    preflight = anon.options(
        f"{BASE}/conversations/1/messages",
        HTTP_ORIGIN=LISTED,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-conversation-token, idempotency-key",
    )
    assert preflight["Access-Control-Allow-Origin"] == LISTED
    allowed = preflight["Access-Control-Allow-Headers"].lower()
    assert "x-conversation-token" in allowed and "idempotency-key" in allowed


@override_settings(CORS_ALLOWED_ORIGINS=[LISTED])
@pytest.mark.parametrize(
    "origin",
    ["https://evil.example.net", "https://shop.example.com.evil.net", "http://shop.example.com", "null"],
)
def test_cors_gives_nothing_to_an_origin_not_on_the_list(origin: str, anon: APIClient) -> None:
    response = anon.post(f"{BASE}/conversations", {}, format="json", HTTP_ORIGIN=origin)
    assert "Access-Control-Allow-Origin" not in response
    preflight = anon.options(f"{BASE}/conversations", HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in preflight
    assert "Access-Control-Allow-Credentials" not in preflight


# --- Header injection ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "page_url",
    [
        "https://x.io/\r\nSet-Cookie: a=b",
        "https://x.io/\nLocation: https://evil.net",
        "https://x.io/\x00",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_page_urls_that_could_inject_or_execute_are_refused(page_url: str, anon: APIClient) -> None:
    response = anon.post(f"{BASE}/conversations", {"page_url": page_url}, format="json")
    assert "page_url" in assert_json_error(response, 400)["errors"]
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize(
    "user_agent",
    ["Bot\r\nX-Injected: yes", "Bot\nSet-Cookie: a=b", "Bot\x1b[31mred\x08", "Bot\tTab\x7f"],
)
def test_user_agents_lose_control_characters(user_agent: str, anon: APIClient, staff: APIClient) -> None:
    created = anon.post(f"{BASE}/conversations", {"user_agent": user_agent}, format="json").json()
    stored_agent = staff.get(f"{BASE}/conversations/{created['id']}").json()["user_agent"]
    assert stored_agent.startswith("Bot")
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in stored_agent)


def test_a_nul_byte_in_a_text_field_is_refused_by_name(anon: APIClient) -> None:
    response = anon.post(f"{BASE}/conversations", {"user_agent": "Bot\x00"}, format="json")
    assert "user_agent" in assert_json_error(response, 400)["errors"]
    assert Conversation.objects.count() == 0


def test_stored_values_never_become_response_headers(anon: APIClient, staff: APIClient) -> None:
    created = anon.post(
        f"{BASE}/conversations",
        {"page_url": "https://x.io/%0D%0ASet-Cookie:%20a=b", "user_agent": "A\r\nB: c"},
        format="json",
    ).json()
    for response in (
        staff.get(f"{BASE}/conversations/{created['id']}"),
        staff.get(f"{BASE}/conversations"),
    ):
        assert "B" not in response and "Set-Cookie" not in response
        assert not response.cookies


# --- HTML and script content stays inert -----------------------------------------------------
SCRIPT = "<script>alert('xss')</script>"
IMG = '<img src=x onerror="alert(1)">'


def _hostile_conversation() -> Conversation:
    conversation, _ = services.conversation_create(user_agent=SCRIPT, user_id=IMG, business_id=SCRIPT)
    services.message_log(
        conversation=conversation,
        turns=[services.Turn(role="user", content=SCRIPT), services.Turn(role="assistant", content=IMG)],
        is_escalation=True,
    )
    conversation.refresh_from_db()
    return conversation


@pytest.mark.parametrize(
    "page",
    [
        "/admin/support/conversation/",
        "/admin/support/conversation/{pk}/change/",
        "/admin/support/message/",
        "/admin/support/message/{message_pk}/change/",
        "/admin/support/ticketevent/",
    ],
)
def test_html_and_script_content_is_escaped_in_the_admin(page: str, superuser: Any) -> None:
    conversation = _hostile_conversation()
    message = Message.objects.filter(conversation=conversation).order_by("created_at", "pk").first()
    browser = APIClient()
    browser.force_login(superuser)
    response = browser.get(page.format(pk=conversation.pk, message_pk=message.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert SCRIPT not in html and IMG not in html
    assert "&lt;script&gt;" in html or "&lt;img" in html


def test_html_content_goes_out_as_inert_json(convo: tuple[Conversation, str], widget: Any, staff: APIClient) -> None:
    conversation, token = convo
    widget(token).post(
        f"{BASE}/conversations/{conversation.pk}/messages",
        {"user_message": SCRIPT, "assistant_message": IMG},
        format="json",
    )
    for response in (
        widget(token).get(f"{BASE}/conversations/{conversation.pk}"),
        staff.get(f"{BASE}/tickets?status=auto_resolved,needs_review"),
        staff.get(f"{BASE}/conversations/{conversation.pk}"),
    ):
        assert response["Content-Type"] == "application/json"
        assert response["X-Content-Type-Options"] == "nosniff"
    assert [m["content"] for m in response.json()["messages"]] == [SCRIPT, IMG]


# --- Date ranges that are too long, or start in the future -----------------------------------
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("date_from=2000-01-01", "date_from"),  # ends today: ten thousand days
        ("date_from=0001-01-01&date_to=9999-12-31", "date_to"),
        ("date_from=2999-01-01", "date_from"),  # after today
        ("date_from=2026-01-10&date_to=2026-01-09", "date_from"),
    ],
)
def test_analytics_refuse_windows_they_cannot_serve(query: str, field: str, staff: APIClient) -> None:
    response = staff.get(f"{BASE}/analytics?{query}")
    assert field in assert_json_error(response, 400)["errors"]


@pytest.mark.parametrize("query", ["date_from=2000-01-01", "date_from=2999-01-01"])
def test_the_dashboard_refuses_them_with_a_form_error_not_a_crash(query: str, superuser: Any) -> None:
    browser = APIClient()
    browser.force_login(superuser)
    response = browser.get(f"/dashboard/analytics/?{query}")
    assert response.status_code == 400
    assert "Must not be after today" in response.content.decode() or "at most 366 days" in response.content.decode()


def test_top_questions_over_a_long_window_are_read_in_several_queries(make_conversation: Any) -> None:
    from datetime import date, timedelta

    from support import selectors

    conversation, _ = make_conversation()
    services.message_log(conversation=conversation, turns=[services.Turn(role="user", content="How much?")])
    today = timezone.now().date()
    # Over SQLite's limit of 500 terms in one compound SELECT if asked for in one query.
    summary = selectors.analytics_summary(date_from=today - timedelta(days=1200), date_to=today)
    assert summary["top_questions"] == [{"question": "how much", "count": 1}]
    assert isinstance(summary["date_from"], str) and date.fromisoformat(summary["date_from"])


def test_html_in_a_conversation_is_escaped_on_the_dashboard(superuser: Any) -> None:
    conversation = _hostile_conversation()
    browser = APIClient()
    browser.force_login(superuser)
    for page in ("/dashboard/", f"/dashboard/conversations/{conversation.pk}/", "/dashboard/conversations/"):
        response = browser.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert SCRIPT not in html and IMG not in html, page
    assert "&lt;script&gt;" in html or "&lt;img" in html
