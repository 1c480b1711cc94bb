"""The chat widget end to end: headless Chromium on the demo page, against the running app."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from support import services
from support.models import Conversation, EscalationReason, Message, Role

pytestmark = [pytest.mark.browser]

XSS_IMG = '<img src=x onerror="window.__xss = 1">'
XSS_SCRIPT = "<script>window.__xss = 2</script>"
XSS_LINK = "[win a prize](javascript:window.__xss=3)"


def demo_url(live_server: Any) -> str:
    return f"{live_server.url}/widget/demo/"


def storage_key(live_server: Any) -> str:
    return f"rezvo-support:{live_server.url}"


def open_widget(page: Any) -> None:
    page.get_by_role("button", name="Open support chat").click()
    page.get_by_role("dialog", name="Rezvo Support").wait_for()


def remember(page: Any, live_server: Any, conversation: Conversation, token: str) -> None:
    """Put a conversation in the widget's localStorage, as a previous visit would have."""
    value = f'{{"id": "{conversation.pk}", "token": "{token}"}}'
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [storage_key(live_server), value])


def test_it_opens_and_closes_from_the_keyboard_with_focus_kept_inside(live_server: Any, page: Any) -> None:
    page.goto(demo_url(live_server))
    launcher = page.get_by_role("button", name="Open support chat")
    launcher.wait_for()
    assert page.get_by_role("dialog").count() == 0  # closed by default

    launcher.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Rezvo Support")
    dialog.wait_for()
    assert page.evaluate("document.querySelector('rezvo-support').shadowRoot.activeElement.id") == "rz-input"
    log = page.get_by_role("log")
    assert log.get_attribute("aria-live") == "polite"
    assert "Rezvo assistant" in log.inner_text()  # the greeting from settings via /widget/config

    inside = "(() => { const r = document.querySelector('rezvo-support').shadowRoot; "
    inside += "return r.querySelector('.rz-panel').contains(r.activeElement); })()"
    for _ in range(8):
        page.keyboard.press("Tab")
        assert page.evaluate(inside), "Tab left the dialog"
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(inside), "Shift+Tab left the dialog"

    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    focused = page.evaluate("document.querySelector('rezvo-support').shadowRoot.activeElement.className")
    assert focused == "rz-launcher"
    assert page.get_by_role("button", name="Open support chat").get_attribute("aria-expanded") == "false"


def test_host_page_css_does_not_leak_in(live_server: Any, page: Any) -> None:
    page.goto(demo_url(live_server))
    page.add_style_tag(
        content="* { color: red !important; font-family: serif !important; } "
        "button { background: red !important; border-radius: 0 !important; } div { display: none !important; }"
    )
    open_widget(page)
    launcher = page.locator(".rz-launcher")
    assert launcher.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(15, 118, 110)"
    bubble = page.locator(".rz-bubble").first
    assert bubble.evaluate("el => getComputedStyle(el).color") != "rgb(255, 0, 0)"
    assert "serif" != bubble.evaluate("el => getComputedStyle(el).fontFamily")
    assert page.locator(".rz-panel").is_visible()


def test_it_fills_a_320px_phone_and_respects_reduced_motion(live_server: Any, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 640}, reduced_motion="reduce", is_mobile=True)
    try:
        page = context.new_page()
        page.goto(demo_url(live_server))
        open_widget(page)
        box = page.locator(".rz-panel").bounding_box()
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 320, 640)
        assert page.locator(".rz-panel").evaluate("el => getComputedStyle(el).animationName") == "none"
        overflow = page.locator(".rz-log").evaluate("el => el.scrollWidth - el.clientWidth")
        assert overflow <= 0
        assert page.get_by_role("button", name="Close support chat").first.is_visible()
    finally:
        context.close()


def test_a_returning_visitor_sees_the_transcript_rates_it_and_leaves_an_email(
    live_server: Any, page: Any, make_conversation: Any, staff: APIClient
) -> None:
    conversation, token = make_conversation()
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content="Can I speak to someone?"),
            services.Turn(role=Role.ASSISTANT, content="Of course. **A person** will pick this up."),
        ],
        is_escalation=True,
        escalation_reason=EscalationReason.HUMAN_REQUESTED,
    )
    page.goto(demo_url(live_server))
    remember(page, live_server, conversation, token)
    page.reload()
    open_widget(page)

    log = page.get_by_role("log")
    log.get_by_text("Can I speak to someone?").wait_for()
    assert log.locator("strong").inner_text() == "A person"
    assert "passed this conversation to our support team" in log.inner_text()

    page.get_by_role("button", name="Yes, this helped").click()
    page.get_by_text("Thanks for your feedback.").wait_for()
    assert page.get_by_role("button", name="Yes, this helped").get_attribute("aria-pressed") == "true"
    conversation.refresh_from_db()
    assert conversation.rating == "up"
    assert conversation.rated_message_id == Message.objects.get(conversation=conversation, role="assistant").pk

    email = page.get_by_label("Your email, so a person can reply")
    email.fill("not an email")
    page.get_by_role("button", name="Send", exact=True).click()
    assert email.evaluate("el => el.validity.valid") is False  # the browser's own check stops it
    email.fill("diner@example.com")
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_text("Thanks! A person will reply to diner@example.com.").wait_for()
    detail = staff.get(f"/api/support/conversations/{conversation.pk}").json()
    assert detail["contact_email"] == "diner@example.com"
    assert detail["rating"] == "up"


def test_stored_messages_with_html_render_as_text_and_run_nothing(
    live_server: Any, page: Any, make_conversation: Any
) -> None:
    conversation, token = make_conversation()
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content=f"{XSS_IMG} and {XSS_SCRIPT}"),
            services.Turn(role=Role.ASSISTANT, content=f"You wrote {XSS_IMG}\n- {XSS_SCRIPT}\n- {XSS_LINK}"),
        ],
    )
    page.add_init_script("window.__xss = 0")
    page.goto(demo_url(live_server))
    remember(page, live_server, conversation, token)
    page.reload()
    open_widget(page)
    page.locator(".rz-row--user").wait_for()
    assert_inert(page)


def assert_inert(page: Any) -> None:
    page.wait_for_timeout(300)  # give an onerror handler time to fire if an <img> had been created
    assert page.evaluate("window.__xss") == 0
    log = page.locator(".rz-log")
    assert log.locator("img, script, iframe").count() == 0
    text = log.inner_text()
    assert XSS_IMG in text and XSS_SCRIPT in text
    for href in log.locator("a").evaluate_all("links => links.map(a => a.href)"):
        assert href.split(":", 1)[0] in {"http", "https", "mailto"}, href
    assert "win a prize" in text
