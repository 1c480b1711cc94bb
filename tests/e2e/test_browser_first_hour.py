"""What a new staff member sees in Chromium (issue 10): chart labels, the ticket's text and the error pages."""

from __future__ import annotations

from typing import Any

import pytest

from support import services
from support.models import Conversation, EscalationReason, Role
from tests.e2e.test_browser import chromium, log_in, page  # noqa: F401 - the shared browser fixtures

pytestmark = [pytest.mark.browser]


@pytest.fixture
def cheap_day(transactional_db: None, staff_user: Any) -> Conversation:
    """One conversation costing $0.0022 (440 Haiku output tokens): the cost axis tops out at "$0.0025"."""
    conversation, _ = services.conversation_create(user_id="u-42")
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content="How do I cancel?", priced=False),
            services.Turn(
                role=Role.ASSISTANT,
                content="To cancel, open **Bookings** and see https://rezvo.co.uk/help for more.",
                model="claude-haiku-4-5",
                output_tokens=440,
            ),
        ],
    )
    services.message_log(
        conversation=conversation,
        turns=[services.Turn(role=Role.USER, content="I still need help", priced=False)],
        is_escalation=True,
        escalation_reason=EscalationReason.BOT_TOOL,
        escalation_detail="Customer says they are the owner",
    )
    return conversation


def test_every_chart_label_lies_inside_its_svg(page: Any, cheap_day: Conversation) -> None:  # noqa: F811
    log_in(page)
    page.goto("/dashboard/analytics/?days=7")
    labels = page.locator("svg.bars").evaluate_all(
        """svgs => svgs.flatMap(svg => {
            const box = svg.viewBox.baseVal;
            return [...svg.querySelectorAll('text')].map(t => {
                const b = t.getBBox();
                return {text: t.textContent, left: b.x, right: b.x + b.width, top: b.y, bottom: b.y + b.height,
                        width: box.width, height: box.height};
            });
        })"""
    )
    assert "$0.0025" in [label["text"] for label in labels]
    for label in labels:
        assert label["left"] >= 0 and label["right"] <= label["width"], label
        assert label["top"] >= 0 and label["bottom"] <= label["height"], label


def test_the_ticket_shows_formatted_replies_links_and_the_bots_note_as_unverified(
    page: Any,  # noqa: F811
    cheap_day: Conversation,
) -> None:
    log_in(page)
    page.goto(f"/dashboard/conversations/{cheap_day.pk}/")
    reply = page.locator(".turn.assistant .bubble").first
    assert reply.locator("strong").inner_text() == "Bookings"
    assert "**" not in reply.inner_text()
    link = reply.locator("a")
    assert link.get_attribute("href") == "https://rezvo.co.uk/help"
    assert link.get_attribute("rel") == "noopener nofollow"
    thread = page.locator(".thread").inner_text()
    assert "in 0" not in thread and "$0.000000" not in thread, "no empty usage under the customer's turns"
    assert "out 440" in thread
    assert page.locator("h1").inner_text() == "I still need help"
    assert "The bot's note (not verified): Customer says they are the owner" in page.locator(".bot-note").inner_text()
    assert page.locator(".details .unverified").count() == 1


def test_a_missing_page_looks_like_the_dashboard(page: Any, transactional_db: None) -> None:  # noqa: F811
    response = page.goto("/dashboard/no-such-page/")
    assert response.status == 404
    card = page.locator("[data-testid=error-page]")
    assert card.locator("h1").inner_text() == "Page not found"
    # The dashboard's stylesheet applied: the card is a white rounded box, not Django's bare default.
    radius = card.evaluate("el => getComputedStyle(el).borderTopLeftRadius")
    assert radius not in ("", "0px")
    assert page.locator(".topbar .brand").is_visible()
