"""The ticket page's and the queue's JavaScript (static/dashboard/ticket.js, queue.js) in headless Chromium.

The API poll of GET /api/support/conversations/{id}/messages is stubbed with page.route (its contract is
in ISSUE12.md), so these run on the UI branch alone; the dashboard's own fragments (turns, queue/live)
are real. POSTs of the composer are caught before they reach the server, to read what the form sent.
The test marked `needs_core` polls the real endpoint and runs once CORE's branch is merged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.conf import settings as django_settings
from django.test import Client

from support import services
from support.models import CannedReply, Conversation, EscalationReason, Message, Role

pytestmark = [pytest.mark.browser]

HAS_CORE = hasattr(services, "conversation_reply") and hasattr(Role, "AGENT")
needs_core = pytest.mark.skipif(not HAS_CORE, reason="needs CORE's API (issue 12): run after merge")


@pytest.fixture
def staff_page(transactional_db: None, browser: Any, live_server: Any, staff_user: Any) -> Iterator[Any]:
    """A signed-in staff member's tab (the session cookie of a test-client login)."""
    client = Client()
    client.force_login(staff_user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def escalated(transactional_db: None, make_conversation: Any) -> tuple[Conversation, list[Message]]:
    conversation, _ = make_conversation()
    turns = services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content="Can I speak to someone?"),
            services.Turn(role=Role.ASSISTANT, content="Of course, a person will reply."),
        ],
    )
    services.conversation_escalate(conversation=conversation, reason=EscalationReason.NO_ANSWER)
    return conversation, turns


def catch_posts(page: Any, pattern: str) -> list[dict[str, list[str]]]:
    """The forms POSTed to `pattern`, answered by the test instead of the server."""
    posts: list[dict[str, list[str]]] = []

    def handle(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        posts.append(parse_qs(route.request.post_data or "", keep_blank_values=True))
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>sent</title><p>sent</p>")

    page.route(pattern, handle)
    return posts


# --- Composer -----------------------------------------------------------------------------------
@pytest.mark.parametrize("keys", ["Control+Enter", "Meta+Enter"])
def test_ctrl_or_cmd_enter_sends_the_reply_and_an_empty_one_is_not_sent(
    staff_page: Any, escalated: tuple[Conversation, list[Message]], keys: str
) -> None:
    conversation, _ = escalated
    posts = catch_posts(staff_page, "**/reply")
    staff_page.goto(f"/dashboard/conversations/{conversation.pk}/")
    box = staff_page.get_by_label("Your reply")
    box.press(keys)
    staff_page.wait_for_timeout(300)
    assert posts == []  # nothing to send
    box.fill("Hi, **Sam** here.\nLine two")
    box.press("Enter")  # a plain Enter is a new line
    assert box.input_value() == "Hi, **Sam** here.\nLine two\n"
    box.press(keys)
    staff_page.get_by_text("sent").wait_for()
    assert len(posts) == 1
    assert posts[0]["content"] == ["Hi, **Sam** here.\r\nLine two\r\n"]
    assert posts[0]["hand_back"] == [""]
    assert posts[0]["csrfmiddlewaretoken"][0]


def test_send_and_hand_back_posts_hand_back(staff_page: Any, escalated: tuple[Conversation, list[Message]]) -> None:
    conversation, _ = escalated
    posts = catch_posts(staff_page, "**/reply")
    staff_page.goto(f"/dashboard/conversations/{conversation.pk}/")
    staff_page.get_by_label("Your reply").fill("Back to the bot.")
    staff_page.get_by_role("button", name="Send and hand back").click()
    staff_page.get_by_text("sent").wait_for()
    assert posts[0]["hand_back"] == ["true"] and posts[0]["content"] == ["Back to the bot."]


def test_a_canned_reply_is_inserted_at_the_cursor(
    staff_page: Any, escalated: tuple[Conversation, list[Message]]
) -> None:
    CannedReply.objects.create(title="Refunds", content="Refunds take **5 days**.")
    conversation, _ = escalated
    staff_page.goto(f"/dashboard/conversations/{conversation.pk}/")
    box = staff_page.get_by_label("Your reply")
    box.fill("Hello!")
    staff_page.get_by_label("Canned reply").select_option(label="Refunds")
    staff_page.get_by_role("button", name="Insert").click()
    assert box.input_value() == "Hello!\nRefunds take **5 days**."
    assert box.evaluate("el => [document.activeElement === el, el.selectionStart]") == [True, len(box.input_value())]
    assert staff_page.get_by_label("Canned reply").input_value() == ""


# --- Live thread --------------------------------------------------------------------------------
def test_a_new_customer_turn_appears_within_5_s_and_the_owner_buttons_follow(
    staff_page: Any, escalated: tuple[Conversation, list[Message]]
) -> None:
    conversation, turns = escalated
    polls: list[dict[str, Any]] = []
    state = {"messages": [], "handled_by": "bot", "etag": 'W/"1"'}

    def api(route: Any) -> None:
        request = route.request
        polls.append({"url": request.url, "if_none_match": request.headers.get("if-none-match")})
        if request.headers.get("if-none-match") == state["etag"]:
            route.fulfill(status=304)
            return
        body = {"messages": state["messages"], "handled_by": state["handled_by"], "status": "in_progress"}
        route.fulfill(
            status=200, headers={"ETag": state["etag"]}, content_type="application/json", body=json.dumps(body)
        )

    staff_page.route(f"**/api/support/conversations/{conversation.pk}/messages**", api)
    staff_page.goto(f"/dashboard/conversations/{conversation.pk}/")
    assert staff_page.locator("article.turn").count() == 2
    assert staff_page.get_by_role("button", name="Take over").is_visible()

    new = services.message_log(
        conversation=conversation, turns=[services.Turn(role=Role.USER, content="Still there? <b>hi</b> **now**")]
    )[0]
    state.update(messages=[{"id": str(new.pk), "role": "user", "content": new.content}], handled_by="human")
    state["etag"] = 'W/"2"'
    started = time.monotonic()
    staff_page.locator(f"article.turn[data-id='{new.pk}']").wait_for(timeout=5_000)
    assert time.monotonic() - started < 5
    assert staff_page.locator(f"article.turn[data-id='{new.pk}'] .bubble strong").inner_text() == "now"
    assert staff_page.locator("article.turn b").count() == 0  # the server's Markdown rules: HTML is text
    assert staff_page.get_by_role("button", name="Hand back to the bot").is_visible()
    assert staff_page.get_by_role("button", name="Take over").is_hidden()
    assert staff_page.get_by_role("status").inner_text() == "The customer wrote again."

    count = len(polls)
    staff_page.wait_for_timeout(3_500)
    assert len(polls) > count
    assert all(f"after={turns[-1].pk}" in p["url"] for p in polls[:count])
    assert f"after={new.pk}" in polls[-1]["url"] and polls[-1]["if_none_match"] == 'W/"2"'
    assert staff_page.locator("article.turn").count() == 3


# --- Queue --------------------------------------------------------------------------------------
def test_the_queue_refreshes_and_counts_new_escalations_in_the_tab_title(
    staff_page: Any, escalated: tuple[Conversation, list[Message]], make_conversation: Any
) -> None:
    staff_page.goto("/dashboard/")
    assert staff_page.title() == "Queue · Rezvo Support"
    assert staff_page.locator("table.tickets tbody tr").count() == 1

    for _ in range(2):
        later, _ = make_conversation()
        services.message_log(conversation=later, turns=[services.Turn(role=Role.USER, content="Help, a person!")])
        services.conversation_escalate(conversation=later, reason=EscalationReason.HUMAN_REQUESTED)
    staff_page.wait_for_function("() => document.title === '(2) Queue · Rezvo Support'", timeout=7_000)
    assert staff_page.locator("table.tickets tbody tr").count() == 3

    staff_page.evaluate("window.dispatchEvent(new Event('focus'))")  # seen
    assert staff_page.title() == "Queue · Rezvo Support"
    staff_page.wait_for_timeout(1_000)
    assert staff_page.title() == "Queue · Rezvo Support"


# --- Against the real endpoint (after the merge) ------------------------------------------------
@needs_core
def test_after_the_merge_the_ticket_page_shows_a_customer_turn_from_the_real_api_within_5_s(
    staff_page: Any, escalated: tuple[Conversation, list[Message]], staff_user: Any
) -> None:
    conversation, _ = escalated
    staff_page.goto(f"/dashboard/conversations/{conversation.pk}/")
    staff_page.get_by_role("button", name="Take over").click()
    staff_page.get_by_role("button", name="Hand back to the bot").wait_for()
    new = services.message_log(conversation=conversation, turns=[services.Turn(role=Role.USER, content="Hi again")])
    staff_page.locator(f"article.turn[data-id='{new[0].pk}']").wait_for(timeout=5_000)

    staff_page.get_by_label("Your reply").fill("On it, **now**.")
    staff_page.get_by_label("Your reply").press("Control+Enter")
    staff_page.locator("article.turn.agent").wait_for()
    assert Message.objects.filter(conversation=conversation, role=Role.AGENT, author=staff_user).count() == 1
