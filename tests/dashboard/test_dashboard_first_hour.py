"""A new staff member's first hour: search, the ticket page, notes and the admin (issues 9 and 10)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from support import services
from support.models import Conversation, EscalationReason, MessageOrigin, ModelPrice, Role
from tests.fakes.desk import turn_pair

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/support/conversation/"


@pytest.fixture
def browser(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def boss(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "correct-horse-battery")
    client = Client()
    client.force_login(user)
    return client


def started(question: str, answer: str = "Here is what I found.", **fields: Any) -> Conversation:
    conversation, _ = services.conversation_create(**fields)
    services.message_log(conversation=conversation, turns=turn_pair(question, answer))
    return conversation


def ticket_html(client: Client, conversation: Conversation) -> str:
    response = client.get(f"/dashboard/conversations/{conversation.pk}/")
    assert response.status_code == 200
    return response.content.decode()


# --- Search ----------------------------------------------------------------------------------
@pytest.mark.parametrize("term", ["maria", "MARIA@EXAMPLE", "checkout-page", "refund policy", "Where is"])
def test_the_dashboard_and_the_admin_search_find_the_same_tickets_by_email_url_content_and_summary(
    browser: Client, boss: Client, term: str
) -> None:
    wanted = started("Where is my table?", "See our refund policy.", page_url="https://rezvo.co.uk/checkout-page")
    Conversation.objects.filter(pk=wanted.pk).update(contact_email="maria@example.com")
    started("How much is it?", page_url="https://rezvo.co.uk/pricing")

    dashboard = browser.get("/dashboard/conversations/", {"q": term})
    admin = boss.get(CHANGELIST, {"q": term})

    assert [c.pk for c in dashboard.context["page"]] == [wanted.pk]
    assert [c.pk for c in admin.context["cl"].result_list] == [wanted.pk]


# --- The thread: safe markdown, links, usage only where there is some --------------------------
def test_the_ticket_renders_the_bots_markdown_and_links_urls_safely(browser: Client) -> None:
    answer = (
        "You can **cancel** a booking:\n\n- open *Bookings*\n- press `Cancel`\n\n"
        "More at https://rezvo.co.uk/help. or [the guide](https://rezvo.co.uk/guide) "
        "[bad](javascript:alert(1)) <script>alert('x')</script> <img src=x onerror=alert(2)>"
    )
    conversation = started("How do I cancel?", answer)

    html = ticket_html(browser, conversation)

    assert "<strong>cancel</strong>" in html and "<em>Bookings</em>" in html and "<code>Cancel</code>" in html
    assert "<li>open <em>Bookings</em></li>" in html
    assert '<a href="https://rezvo.co.uk/help" rel="noopener nofollow">https://rezvo.co.uk/help</a>.' in html
    assert '<a href="https://rezvo.co.uk/guide" rel="noopener nofollow">the guide</a>' in html
    assert "**cancel**" not in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html or "&lt;script&gt;alert('x')" in html


def test_the_ticket_shows_usage_only_under_turns_that_have_some(browser: Client) -> None:
    conversation = started("Hello", "Hi there")
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(
                role=Role.USER, content="Thanks", model="", input_tokens=0, priced=False, origin=MessageOrigin.PROXY
            )
        ],
    )

    html = ticket_html(browser, conversation)

    # turn_pair puts input tokens on the customer's turn and output on the bot's: each shows its own.
    assert html.count('class="usage"') == 2
    assert "in 0 · out 0" not in html and "$0.000000" not in html


# --- Escalations: the latest leads, every one listed, the bot's words labelled ----------------
def test_the_latest_escalation_leads_the_ticket_and_earlier_ones_stay_listed(browser: Client, staff_user: Any) -> None:
    conversation = started("How much is it?")
    services.message_log(
        conversation=conversation,
        turns=turn_pair("Can I get a refund for last month?", "I will pass this on."),
        is_escalation=True,
        escalation_reason=EscalationReason.BOT_TOOL,
        escalation_detail="Customer wants a refund for a double charge",
    )
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": "closed"})
    services.message_log(
        conversation=conversation,
        turns=turn_pair("I want to speak to a manager", "Someone will reply."),
        is_escalation=True,
        escalation_reason=EscalationReason.HUMAN_REQUESTED,
    )

    response = browser.get(f"/dashboard/conversations/{conversation.pk}/")
    html = response.content.decode()

    lead = html[html.index("<h1") : html.index("</h1>")]
    assert "I want to speak to a manager" in lead
    escalations = response.context["escalations"]
    assert [e.reason for e in escalations] == [EscalationReason.HUMAN_REQUESTED, EscalationReason.BOT_TOOL]
    assert [e.question for e in escalations] == ["I want to speak to a manager", "Can I get a refund for last month?"]
    assert escalations[1].detail == "Customer wants a refund for a double charge"
    listed = html[html.index('class="escalations"') :]
    assert listed.index("Customer asked for a human") < listed.index("Bot asked for a human")


def test_the_bots_note_and_the_widgets_ids_are_never_shown_as_verified(browser: Client, boss: Client) -> None:
    conversation = started("Hi", user_id="u-42", business_id="b-7")
    services.message_log(
        conversation=conversation,
        turns=turn_pair("Refund me", "Passing this on."),
        is_escalation=True,
        escalation_reason=EscalationReason.BOT_TOOL,
        escalation_detail="Customer is the owner and was charged twice",
    )

    for html in (
        ticket_html(browser, conversation),
        boss.get(f"{CHANGELIST}{conversation.pk}/change/").content.decode(),
    ):
        assert "Why it was escalated" not in html
        assert "The bot&#x27;s note (not verified)" in html or "The bot's note (not verified)" in html
        assert "Customer is the owner and was charged twice" in html
        assert html.count("unverified") >= 2, "user id and business id are labelled unverified"


# --- Notes: a timeline of entries ---------------------------------------------------------------
def test_notes_are_a_timeline_of_entries_with_author_and_time(browser: Client, staff_user: Any) -> None:
    conversation = started("Hello")
    url = f"/dashboard/conversations/{conversation.pk}/"

    assert browser.post(url, {"action": "notes", "notes": "Called back, no answer"}).status_code == 302
    assert browser.post(url, {"action": "notes", "notes": "Reached her by email"}).status_code == 302

    notes = list(conversation.ticket_notes.order_by("created_at", "pk"))
    assert [(n.text, n.author_id, n.author_label) for n in notes] == [
        ("Called back, no answer", staff_user.pk, "agent"),
        ("Reached her by email", staff_user.pk, "agent"),
    ]
    html = ticket_html(browser, conversation)
    timeline = html[html.index('class="notes-timeline"') :]
    assert timeline.index("Called back, no answer") < timeline.index("Reached her by email")
    assert "added a note" in html
    assert browser.post(url, {"action": "notes", "notes": "   "}).status_code == 400
    assert conversation.ticket_notes.count() == 2


def test_the_api_patch_appends_a_note_and_returns_the_entries_joined(
    staff: Any, staff_user: Any, make_conversation: Any
) -> None:
    conversation, _ = make_conversation()
    url = f"/api/support/conversations/{conversation.pk}"

    first = staff.patch(url, {"status": "closed", "notes": "Resolved via email"}, format="json").json()
    second = staff.patch(url, {"notes": "Customer confirmed"}, format="json").json()

    assert first["notes"] == "Resolved via email"
    assert second["notes"] == "Resolved via email\n\nCustomer confirmed"
    assert [n.text for n in conversation.ticket_notes.order_by("created_at", "pk")] == [
        "Resolved via email",
        "Customer confirmed",
    ]


def test_concurrent_notes_are_all_kept(staff_user: Any, make_conversation: Any, transactional_db: None) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    conversation, _ = make_conversation()

    def add(i: int) -> None:
        try:
            services.ticket_note_add(conversation=conversation, author=staff_user, text=f"note {i}")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(add, range(12)))

    stored = Conversation.objects.get(pk=conversation.pk)
    assert conversation.ticket_notes.count() == 12
    assert sorted(stored.notes.split("\n\n")) == sorted(f"note {i}" for i in range(12))


# --- Prices in the admin read and edit in dollars ----------------------------------------------
def test_the_admin_shows_and_edits_prices_in_dollars_per_million_tokens(boss: Client) -> None:
    haiku = ModelPrice.objects.get(model="claude-haiku-4-5")
    listing = boss.get("/admin/support/modelprice/").content.decode()
    assert "$1.00 / MTok" in listing and "$5.00 / MTok" in listing and "$0.10 / MTok" in listing
    assert "1000000" not in listing

    form = boss.get(f"/admin/support/modelprice/{haiku.pk}/change/").content.decode()
    assert 'name="input_per_mtok_micros" value="1.000000"' in form or 'value="1"' in form
    response = boss.post(
        f"/admin/support/modelprice/{haiku.pk}/change/",
        {
            "model": "claude-haiku-4-5",
            "input_per_mtok_micros": "0.8",
            "output_per_mtok_micros": "4",
            "cache_write_5m_per_mtok_micros": "1",
            "cache_write_1h_per_mtok_micros": "1.6",
            "cache_read_per_mtok_micros": "0.08",
            "effective_from_0": "2025-01-01",
            "effective_from_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    haiku.refresh_from_db()
    assert (haiku.input_per_mtok_micros, haiku.output_per_mtok_micros, haiku.cache_read_per_mtok_micros) == (
        800_000,
        4_000_000,
        80_000,
    )


# --- Platform: HEAD /health, a favicon, styled error pages ----------------------------------------
def test_health_answers_head_as_well_as_get() -> None:
    client = Client()
    assert client.head("/health").status_code == 200
    assert client.get("/health").json() == {"status": "ok", "database": "ok", "queue": {"pending": 0}}


def test_the_favicon_is_served() -> None:
    response = Client().get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain and response.redirect_chain[0][0].endswith("favicon.ico")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body[:4] == b"\x00\x00\x01\x00", "an ICO file"


def test_a_missing_page_is_a_styled_404_and_an_api_path_gets_json(browser: Client) -> None:
    page = browser.get("/dashboard/no-such-page/")
    assert page.status_code == 404
    html = page.content.decode()
    assert "Page not found" in html and "/static/dashboard.css" in html and "/dashboard/no-such-page/" in html

    api = browser.get("/api/support/no-such-endpoint")
    assert api.status_code == 404
    assert api.json() == {"detail": "Not found."}


def test_a_server_error_is_a_styled_500_page_without_internals(
    browser: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support import selectors

    def boom(**kwargs: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(selectors, "analytics_summary", boom)
    browser.raise_request_exception = False
    response = browser.get("/dashboard/analytics/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and "/static/dashboard.css" in html
    assert "secret internal detail" not in html
