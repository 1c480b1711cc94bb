"""Issue 10, "First hour as a new user": what a visitor sees in the widget, in headless Chromium."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from support import services
from support.models import Role
from tests.e2e.test_widget_e2e import ask, claude, demo_url, open_widget, other_site, remember, wait_for_reply
from tests.fakes.fake_claude import FakeClaude, Reply

__all__ = ["claude", "other_site"]  # fixtures shared with test_widget_e2e

pytestmark = [pytest.mark.browser]

SHADOW = "document.querySelector('rezvo-support').shadowRoot"

# The WCAG 2 contrast of an element's rendered colour against what is painted behind it: colours are
# read with getComputedStyle, parsed by a canvas (so color-mix() and color() results count), and the
# backgrounds of the element and its ancestors (across the shadow root) are composited over white.
CONTRAST = """(el) => {
  const ctx = document.createElement('canvas').getContext('2d', {willReadFrequently: true});
  const rgba = (css) => {
    ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = '#000'; ctx.fillStyle = css; ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data; return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  const chain = [];
  let opacity = 1;
  for (let node = el; node; node = node.parentElement || (node.getRootNode().host || null)) {
    chain.unshift(node);
    opacity *= Number(getComputedStyle(node).opacity);
  }
  let bg = [255, 255, 255, 1];
  for (const node of chain) bg = over(rgba(getComputedStyle(node).backgroundColor), bg);
  const fg = over(rgba(getComputedStyle(el).color), bg);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return {ratio: (hi + 0.05) / (lo + 0.05), opacity, fg: getComputedStyle(el).color};
}"""


def assert_readable(page: Any, targets: dict[str, str], state: str) -> dict[str, float]:
    """targets: CSS selector (inside the widget) -> "text" (4.5:1) or "icon" (3:1); every match is checked."""
    ratios = {}
    for selector, kind in targets.items():
        elements = page.locator(selector)
        assert elements.count(), f"{state}: nothing matches {selector}"
        for i in range(elements.count()):
            found = elements.nth(i).evaluate(CONTRAST)
            need = 4.5 if kind == "text" else 3.0
            assert found["opacity"] == 1, f"{state}: {selector} is faded (opacity {found['opacity']})"
            assert found["ratio"] >= need, f"{state}: {selector} {found['fg']} contrast {found['ratio']:.2f} < {need}"
            ratios[selector] = min(ratios.get(selector, 99.0), round(found["ratio"], 2))
    return ratios


@pytest.mark.parametrize("colour", ["#fde047", "#0f766e", "#1e1b4b"])
def test_every_text_and_icon_meets_wcag_aa_for_a_light_a_mid_and_a_dark_brand_colour(
    live_server: Any, browser: Any, claude: FakeClaude, settings: Any, colour: str
) -> None:
    settings.SUPPORT_WIDGET_PRIMARY_COLOUR = colour
    claude.enqueue(
        Reply(text="Of course: *a person* will reply. Meanwhile see https://rezvo.co.uk/help.", chunk_delay=0.01)
    )
    # Colours are measured at rest: with motion reduced the panel's opening fade is not caught half way.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, reduced_motion="reduce")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(demo_url(live_server))
        page.locator(".rz-launcher").wait_for()
        assert_readable(page, {".rz-launcher-open svg": "icon"}, "closed")

        open_widget(page)
        assert_readable(
            page,
            {
                ".rz-title": "text",
                ".rz-subtitle": "text",
                ".rz-header .rz-icon-button svg": "icon",
                ".rz-avatar svg": "icon",
                ".rz-row--greeting .rz-bubble p": "text",
                ".rz-chip": "text",
                ".rz-send svg": "icon",
            },
            "open",
        )

        ask(page, "I'd like to talk to a person")
        wait_for_reply(page, 1)
        page.locator(".rz-handoff").wait_for()
        page.get_by_role("button", name="Yes, this helped").click()
        page.get_by_text("Thanks for your feedback.").wait_for()
        assert_readable(
            page,
            {
                ".rz-row--user .rz-bubble p": "text",
                ".rz-row--assistant:not(.rz-row--greeting) .rz-bubble p": "text",
                ".rz-row--assistant:not(.rz-row--greeting) .rz-bubble em": "text",
                ".rz-row--assistant:not(.rz-row--greeting) .rz-bubble a": "text",
                ".rz-rate > span:first-child": "text",
                ".rz-rate-note": "text",
                ".rz-thumb svg": "icon",
                ".rz-handoff-title": "text",
                ".rz-email-form label": "text",
                ".rz-email-send": "text",
                ".rz-handoff-alt": "text",
                ".rz-handoff-alt a": "text",
                ".rz-new": "text",
                ".rz-send svg": "icon",
            },
            "after a hand-off",
        )

        page.route("**/api/support/conversations/*/chat", lambda route: route.abort("connectionreset"))
        ask(page, "Are you there?")
        page.get_by_role("alert").get_by_role("button", name="Retry").wait_for()
        assert_readable(
            page,
            {".rz-alert span": "text", ".rz-retry": "text", ".rz-row--failed .rz-bubble p": "text"},
            "retry",
        )

        page.get_by_role("button", name="Start a new conversation").click()
        assert_readable(page, {".rz-confirm p": "text", ".rz-confirm-yes": "text", ".rz-confirm-no": "text"}, "confirm")
    finally:
        context.close()


def one_shot(page: Any) -> list[str]:
    """The widget asks for a stream; the app gets `stream: false` and answers in one JSON body."""
    content_types: list[str] = []

    def handle(route: Any) -> None:
        body = json.loads(route.request.post_data)
        body["stream"] = False
        response = route.fetch(post_data=json.dumps(body))
        content_types.append(response.headers.get("content-type", ""))
        route.fulfill(response=response)

    page.route("**/api/support/conversations/*/chat", handle)
    return content_types


AT_END = (
    f"() => {{ const l = {SHADOW}.querySelector('.rz-log'); "
    "return l.scrollHeight - l.scrollTop - l.clientHeight < 2; }"
)


def test_a_one_shot_reply_scrolls_the_transcript_to_its_end(live_server: Any, page: Any, claude: FakeClaude) -> None:
    long_reply = "\n\n".join(
        f"Step {i}: a paragraph of instructions long enough to wrap over lines." for i in range(12)
    )
    claude.enqueue(Reply(text=long_reply))
    content_types = one_shot(page)
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "How do I get started?")
    reply = wait_for_reply(page, 1)
    assert content_types == ["application/json"]  # the reply really came back in one piece
    page.wait_for_function(AT_END, timeout=3_000)
    composer = page.locator(".rz-footer").bounding_box()
    last_line = reply.locator("p").last.bounding_box()
    assert last_line["y"] + last_line["height"] <= composer["y"], "the reply's end is hidden under the input"


def test_every_hand_off_brings_the_email_form_into_view_keeping_what_was_typed(
    live_server: Any, page: Any, claude: FakeClaude
) -> None:
    claude.enqueue(Reply(text="\n\n".join(f"Detail {i} of a long answer that fills the panel." for i in range(10))))
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "I'd like to talk to a person")
    wait_for_reply(page, 1)
    page.get_by_label("Your email, so a person can reply").fill("diner@exam")

    # A person owns the conversation now: the next turn is sent to them, and the bot stays silent.
    ask(page, "Still a person please")
    page.get_by_text("Sent - a person will reply here").wait_for()
    page.wait_for_function(AT_END, timeout=3_000)
    assert page.locator(".rz-handoff").count() == 1
    after_last_reply = f"""() => {{
      const r = {SHADOW};
      const rows = r.querySelectorAll('.rz-row--assistant');
      return !!(rows[rows.length - 1].compareDocumentPosition(r.querySelector('.rz-handoff'))
                & Node.DOCUMENT_POSITION_FOLLOWING);
    }}"""
    assert page.evaluate(after_last_reply)
    email = page.get_by_label("Your email, so a person can reply")
    log_box = page.locator(".rz-log").bounding_box()
    email_box = email.bounding_box()
    assert log_box["y"] <= email_box["y"] and email_box["y"] + email_box["height"] <= log_box["y"] + log_box["height"]
    assert email.input_value() == "diner@exam"


def test_starting_a_new_conversation_asks_first(live_server: Any, page: Any, claude: FakeClaude) -> None:
    claude.enqueue(Reply(text="Plans start at £0."), Reply(text="Welcome back."))
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "How much is it?")
    wait_for_reply(page, 1)

    page.get_by_role("button", name="Start a new conversation").click()
    page.get_by_text("Start a new conversation? This one will be closed on this device.").wait_for()
    assert page.locator(".rz-row--user").count() == 1  # nothing discarded yet
    page.get_by_role("button", name="Keep this one").click()
    assert page.locator(".rz-row--user").count() == 1
    assert page.locator(".rz-confirm").is_hidden()

    page.get_by_role("button", name="Start a new conversation").click()
    page.get_by_role("button", name="Start new", exact=True).click()
    assert page.locator(".rz-row--user").count() == 0
    assert page.get_by_role("button", name="How much does Rezvo cost?").is_visible()


def test_a_refused_new_conversation_says_so_and_offers_the_support_email(
    live_server: Any, page: Any, claude: FakeClaude, settings: Any, anon: APIClient
) -> None:
    settings.SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE = "1/hour"
    settings.SUPPORT_EMAIL = "help@rezvo.example"
    assert anon.post("/api/support/conversations", {"source": "web"}, format="json").status_code == 201
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "Hello?")
    alert = page.get_by_role("alert")
    alert.get_by_text("We can't start a new conversation from your network right now").wait_for()
    text = alert.inner_text()
    assert "faster than we can answer" not in text
    assert "Please wait about 60 minutes" in text or "Please wait about 59 minutes" in text
    assert alert.get_by_role("link", name="help@rezvo.example").get_attribute("href") == "mailto:help@rezvo.example"


def test_a_site_missing_from_cors_allowed_origins_is_named_in_the_console(
    live_server: Any, page: Any, settings: Any, other_site: Any
) -> None:
    settings.CORS_ALLOWED_ORIGINS = []
    other_site.page = (
        f'<!doctype html><title>Shop</title><script src="{live_server.url}/static/support/widget.js" '
        f'data-api="{live_server.url}" async></script>'
    )
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{other_site.origin}/")
    page.wait_for_function("() => !!document.querySelector('rezvo-support')")
    page.wait_for_timeout(500)
    named = [e for e in errors if "CORS_ALLOWED_ORIGINS" in e]
    assert len(named) == 1, errors
    assert other_site.origin in named[0] and live_server.url in named[0]


def test_italic_renders_without_breaking_bold_bullets_or_arithmetic(
    live_server: Any, page: Any, make_conversation: Any
) -> None:
    conversation, token = make_conversation()
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content="Formatting?"),
            services.Turn(
                role=Role.ASSISTANT,
                content="This is *really* **bold**, *quite* so, and 2 * 3 = 6 or a*b*c.\n* first\n* second",
            ),
        ],
    )
    page.goto(demo_url(live_server))
    remember(page, live_server, conversation, token)
    page.reload()
    open_widget(page)
    reply = page.locator(".rz-row--assistant:not(.rz-row--greeting)")
    reply.wait_for()
    assert reply.locator("em").all_inner_texts() == ["really", "quite"]
    assert reply.locator("strong").all_inner_texts() == ["bold"]
    assert reply.locator("li").all_inner_texts() == ["first", "second"]
    assert "2 * 3 = 6 or a*b*c." in reply.inner_text()


@pytest.mark.parametrize(("colour", "rendered"), [("#fde047", "rgb(253, 224, 71)"), ("#1e1b4b", "rgb(30, 27, 75)")])
def test_the_dashboard_wears_the_brand_colour_with_readable_text(
    live_server: Any, page: Any, settings: Any, colour: str, rendered: str
) -> None:
    settings.SUPPORT_WIDGET_PRIMARY_COLOUR = colour
    page.goto(f"{live_server.url}/accounts/login/")
    button = page.get_by_role("button", name="Log in")
    assert button.evaluate("el => getComputedStyle(el).backgroundColor") == rendered
    assert button.evaluate(CONTRAST)["ratio"] >= 4.5
    logo = page.locator(".logo")
    assert logo.evaluate("el => getComputedStyle(el).backgroundColor") == rendered
    assert logo.evaluate(CONTRAST)["ratio"] >= 4.5
