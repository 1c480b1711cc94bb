"""The chat widget end to end: headless Chromium on the demo page, against the running app."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from support import services
from support.limiter import rate_limits_reset
from support.models import Conversation, EscalationReason, Message, Role
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = [pytest.mark.browser]

XSS_IMG = '<img src=x onerror="window.__xss = 1">'
XSS_SCRIPT = "<script>window.__xss = 2</script>"
XSS_LINK = "[win a prize](javascript:window.__xss=3)"


PRICING_CHUNKS = [
    "Rezvo takes ",
    "**no commission** ",
    "on bookings. ",
    "There are two plans:\n",
    "- **Free**: up to ",
    "100 covers a month\n",
    "- **Pro**: £29/month, ",
    "unlimited covers and SMS reminders\n\n",
    "See https://rezvo.co.uk/pricing for details.",
]
# Records, on every DOM change in the transcript, how much reply text the newest bubble shows and
# whether it is still streaming: proof that the reply is painted while it arrives, not once at the end.
WATCH_REPLY = """() => {
  const log = document.querySelector('rezvo-support').shadowRoot.querySelector('.rz-log');
  window.__paints = [];
  new MutationObserver(() => {
    const bubbles = log.querySelectorAll('.rz-row--assistant:not(.rz-row--greeting) .rz-bubble:not(.rz-typing)');
    const last = bubbles[bubbles.length - 1];
    if (!last) return;
    window.__paints.push({length: last.textContent.length, streaming: last.classList.contains('rz-streaming')});
  }).observe(log, {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture
def claude(settings: Any) -> Iterator[FakeClaude]:
    """The running app's chat proxy talks to FakeClaude through the real SDK (settings, as in production)."""
    with FakeClaude() as fake:
        settings.ANTHROPIC_API_KEY = "sk-ant-widget-test-key"
        settings.ANTHROPIC_BASE_URL = fake.base_url
        settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
        settings.SUPPORT_CLAUDE_TIMEOUT_S = 10.0
        settings.SUPPORT_CLAUDE_STALL_TIMEOUT_S = 10.0
        yield fake


def ask(page: Any, text: str) -> None:
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def wait_for_reply(page: Any, count: int) -> Any:
    """The count-th reply, once finished (its rating buttons appear only after the `done` event)."""
    page.locator(".rz-rate").wait_for()
    replies = page.locator(".rz-row--assistant:not(.rz-row--greeting)")
    page.wait_for_function(
        "n => document.querySelector('rezvo-support').shadowRoot"
        ".querySelectorAll('.rz-row--assistant:not(.rz-row--greeting)[data-id]').length >= n",
        arg=count,
    )
    return replies.nth(count - 1)


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
    # A constructed stylesheet: the demo's Content-Security-Policy refuses an injected <style> element.
    page.evaluate(
        "css => { const s = new CSSStyleSheet(); s.replaceSync(css); document.adoptedStyleSheets = [s]; }",
        "* { color: red !important; font-family: serif !important; } "
        "button { background: red !important; border-radius: 0 !important; } div { display: none !important; }",
    )
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == "rgb(255, 0, 0)"  # host styled
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


# --- With the chat proxy and FakeClaude ------------------------------------------------------
def test_a_customer_asks_sees_the_reply_stream_in_reloads_asks_for_a_person_and_rates(
    live_server: Any, page: Any, claude: FakeClaude, staff: APIClient
) -> None:
    claude.enqueue(Reply(chunks=PRICING_CHUNKS, chunk_delay=0.12, input_tokens=40, output_tokens=45))
    page.goto(demo_url(live_server))
    open_widget(page)
    page.evaluate(WATCH_REPLY)

    ask(page, "How much does Rezvo cost?")
    reply = wait_for_reply(page, 1)
    full_text = "".join(PRICING_CHUNKS)
    paints = page.evaluate("window.__paints")
    partial = [p["length"] for p in paints if p["streaming"]]
    assert len(set(partial)) >= 3, f"the reply was not painted while streaming: {paints}"
    assert partial == sorted(partial) and max(partial) < len(full_text.replace("**", "").replace("\n", ""))
    assert reply.locator("strong").all_inner_texts() == ["no commission", "Free", "Pro"]
    assert reply.locator("li").count() == 2
    link = reply.get_by_role("link", name="https://rezvo.co.uk/pricing")
    assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"
    assert claude.last_request.stream is True

    conversation = Conversation.objects.get()
    answer = Message.objects.get(conversation=conversation, role=Role.ASSISTANT)
    assert answer.content == full_text and answer.output_tokens == 45
    assert reply.get_attribute("data-id") == str(answer.pk)

    # A reload restores the transcript from the server, in the same conversation.
    page.reload()
    open_widget(page)
    page.get_by_role("log").get_by_text("How much does Rezvo cost?").wait_for()
    restored = page.locator(".rz-row--assistant:not(.rz-row--greeting)")
    assert restored.count() == 1
    assert restored.first.locator("strong").all_inner_texts() == ["no commission", "Free", "Pro"]
    assert Conversation.objects.count() == 1

    # Asking for a person escalates: the widget says so and asks where to reply.
    claude.enqueue(Reply(text="Of course. I've asked a member of the team to pick this up.", chunk_delay=0.02))
    ask(page, "I'd like to talk to a person")
    wait_for_reply(page, 2)
    page.get_by_text("We've passed this conversation to our support team.").wait_for()
    page.get_by_label("Your email, so a person can reply").fill("diner@example.com")
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_text("Thanks! A person will reply to diner@example.com.").wait_for()
    detail = staff.get(f"/api/support/conversations/{conversation.pk}").json()
    assert detail["contact_email"] == "diner@example.com"
    assert detail["escalated"] is True and detail["escalation_reason"] == "human_requested"
    assert detail["status"] == "needs_review"

    # Thumbs down on the latest reply, then thumbs up: the rating is overwritten and shows in the history.
    page.get_by_role("button", name="No, this didn't help").click()
    page.get_by_text("Thanks for your feedback.").wait_for()
    page.get_by_role("button", name="Yes, this helped").click()
    page.wait_for_function(
        "() => document.querySelector('rezvo-support').shadowRoot"
        ".querySelector('.rz-thumb[data-value=up]').getAttribute('aria-pressed') === 'true'"
    )
    detail = staff.get(f"/api/support/conversations/{conversation.pk}").json()
    latest = Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).order_by("-created_at", "-pk")[0]
    assert detail["rating"] == "up" and detail["rated_message_id"] == str(latest.pk)
    assert staff.get("/api/support/analytics?days=1").json()["csat_pct"] == 100.0

    # Start again: the old conversation is forgotten by this browser (not deleted on the server).
    page.get_by_role("button", name="Start a new conversation").click()
    page.get_by_role("button", name="Start new", exact=True).click()  # confirmed: it would discard this one
    assert page.locator(".rz-row--user").count() == 0
    assert page.get_by_role("button", name="How much does Rezvo cost?").is_visible()
    assert page.evaluate("key => localStorage.getItem(key)", storage_key(live_server)) is None
    page.get_by_role("button", name="How do I get started?").click()
    wait_for_reply(page, 1)
    assert Conversation.objects.count() == 2


def test_html_in_questions_and_streamed_replies_renders_as_text_and_runs_nothing(
    live_server: Any, page: Any, claude: FakeClaude
) -> None:
    reply = f"You wrote {XSS_IMG}\n- {XSS_SCRIPT}\n- {XSS_LINK}"
    # Split mid-tag, so no single delta holds a whole element.
    claude.enqueue(Reply(chunks=[reply[i : i + 7] for i in range(0, len(reply), 7)], chunk_delay=0.005))
    page.add_init_script("window.__xss = 0")
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, f"{XSS_IMG} and {XSS_SCRIPT}")
    wait_for_reply(page, 1)
    assert_inert(page)
    assert Message.objects.get(role=Role.ASSISTANT).content == reply

    page.reload()  # and again from the stored transcript
    open_widget(page)
    page.locator(".rz-row--user").wait_for()
    assert_inert(page)


def test_a_reply_lost_on_the_way_is_retried_with_the_same_key_and_stored_once(
    live_server: Any, page: Any, claude: FakeClaude
) -> None:
    claude.enqueue(Reply(text="Plans start at £0."))
    keys: list[str] = []

    def lose_the_first_answer(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the app answers and stores the turn...
            route.abort("connectionreset")  # ...but the browser never gets it
        else:
            route.continue_()

    page.route("**/api/support/conversations/*/chat", lose_the_first_answer)
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "How much is it?")
    alert = page.get_by_role("alert")
    alert.get_by_text("We couldn't reach support. Check your connection and try again.").wait_for()
    assert Message.objects.count() == 2  # the turn did reach the app

    alert.get_by_role("button", name="Retry").click()
    reply = wait_for_reply(page, 1)
    assert reply.inner_text().endswith("Plans start at £0.")
    assert len(keys) == 2 and keys[0] == keys[1]
    assert Message.objects.count() == 2  # replayed, not asked twice
    assert len(claude.requests) == 1
    assert page.locator(".rz-row--user").count() == 1
    assert alert.is_hidden()


def test_a_429_says_to_wait_and_the_retry_goes_through_once_allowed(
    live_server: Any, page: Any, claude: FakeClaude, settings: Any
) -> None:
    settings.SUPPORT_THROTTLE_CONVERSATION_RATE = "1/min"
    claude.enqueue(Reply(text="Plans start at £0."), Reply(text="Pro is £29 a month."))
    page.clock.install()
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "How much is it?")
    wait_for_reply(page, 1)

    ask(page, "And the Pro plan?")
    alert = page.get_by_role("alert")
    alert.get_by_text("You're sending messages faster than we can answer. Please wait").wait_for()
    retry = alert.get_by_role("button", name="Retry")
    assert retry.is_disabled()
    assert Message.objects.count() == 2  # the refused turn was not stored

    rate_limits_reset()  # the minute passes for the server...
    page.clock.fast_forward(61_000)  # ...and for the widget
    retry.click()
    wait_for_reply(page, 2)
    assert Message.objects.count() == 4
    assert [m.content for m in Message.objects.filter(role=Role.USER)] == ["How much is it?", "And the Pro plan?"]


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_screenshot_of_the_open_widget_mid_conversation(
    live_server: Any, browser: Any, claude: FakeClaude, tmp_path: Path
) -> None:
    """`make screenshot` saves this to docs/screenshots/widget.png for the README."""
    target = Path(os.environ.get("WIDGET_SCREENSHOT") or tmp_path / "widget.png")
    context = browser.new_context(viewport={"width": 1200, "height": 760}, device_scale_factor=1)
    try:
        page = context.new_page()
        claude.enqueue(Reply(chunks=PRICING_CHUNKS, chunk_delay=0.01))
        page.goto(demo_url(live_server))
        open_widget(page)
        ask(page, "How much does Rezvo cost?")
        wait_for_reply(page, 1)
        page.get_by_role("button", name="Yes, this helped").click()
        page.get_by_text("Thanks for your feedback.").wait_for()
        page.get_by_label("Your message").fill("Do you integrate with Square?")
        page.wait_for_timeout(300)  # let the panel's opening animation finish
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target))
    finally:
        context.close()
    assert _png_size(target) == (1200, 760)


def test_a_full_conversation_says_so_without_a_pointless_retry(
    live_server: Any, page: Any, claude: FakeClaude, settings: Any
) -> None:
    settings.SUPPORT_CHAT_MAX_TURNS = 2
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "How much is it?")
    wait_for_reply(page, 1)
    ask(page, "And the Pro plan?")
    alert = page.get_by_role("alert")
    alert.get_by_text("start a new conversation", exact=False).wait_for()
    assert alert.get_by_role("button", name="Retry").count() == 0
    assert page.get_by_label("Your message").input_value() == "And the Pro plan?"  # given back, not lost
    assert page.locator(".rz-row--user").count() == 1


@pytest.fixture
def other_site() -> Iterator[Any]:
    """A second web server (another origin) whose page embeds the widget; `.page` is its HTML."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = server.page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.page = ""
    server.origin = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_site_on_another_origin_embeds_it_when_listed_in_cors_allowed_origins(
    live_server: Any, page: Any, claude: FakeClaude, settings: Any, other_site: Any
) -> None:
    other_site.page = (
        f"<!doctype html><title>Shop</title><h1>Our shop</h1>"
        f'<script src="{live_server.url}/static/support/widget.js" data-api="{live_server.url}" '
        f'data-source="web" data-title="Shop help" data-colour="#7c3aed" async></script>'
    )
    shop = other_site.origin
    claude.enqueue(Reply(chunks=["Open ", "every ", "day."], chunk_delay=0.02))

    settings.CORS_ALLOWED_ORIGINS = []
    page.goto(f"{shop}/")
    page.get_by_role("button", name="Open support chat").click()
    page.get_by_role("dialog", name="Shop help").wait_for()  # data attributes, no server config needed
    ask(page, "When are you open?")
    page.get_by_role("alert").get_by_text("We couldn't reach support.").wait_for()
    assert Conversation.objects.count() == 0  # the browser refused to send it

    settings.CORS_ALLOWED_ORIGINS = [shop]
    page.get_by_role("alert").get_by_role("button", name="Retry").click()
    reply = wait_for_reply(page, 1)
    assert reply.inner_text().endswith("Open every day.")
    conversation = Conversation.objects.get()
    assert conversation.page_url == f"{shop}/"
    launcher = page.locator(".rz-launcher")
    assert launcher.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(124, 58, 237)"
