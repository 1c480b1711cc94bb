"""The widget's "Did that answer your question?" (issue 14) in headless Chromium, against the running app:
asked once under each substantive answer, never after small talk, Yes -> confirmed, No -> negative."""

from __future__ import annotations

from typing import Any

import pytest

from support.models import Conversation, Outcome
from tests.e2e.test_widget_e2e import ask, claude, demo_url, open_widget, wait_for_reply
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = [pytest.mark.browser]

__all__ = ["claude"]  # the FakeClaude fixture, shared with the widget's other browser tests

QUESTION = "Did that answer your question?"


def outcome() -> str:
    return Conversation.objects.get().outcome


def test_the_widget_asks_once_per_substantive_answer_and_the_answer_sets_the_outcome(
    live_server: Any, page: Any, claude: FakeClaude
) -> None:
    page.goto(demo_url(live_server))
    open_widget(page)

    # Small talk is not an answer: no question, only the quiet thumbs.
    claude.enqueue(Reply(text="Hello there!"))
    ask(page, "hi")
    wait_for_reply(page, 1)
    assert page.get_by_text(QUESTION).count() == 0
    assert outcome() == Outcome.ABANDONED

    claude.enqueue(Reply(text="Rezvo has a free plan; Pro is £29 a month with SMS reminders."))
    ask(page, "How much does Rezvo cost?")
    wait_for_reply(page, 2)
    page.get_by_text(QUESTION).wait_for()
    assert outcome() == Outcome.OPEN
    page.get_by_role("button", name="Yes, this helped").click()
    page.get_by_text("Thanks for your feedback.").wait_for()
    assert outcome() == Outcome.CONFIRMED
    # Answered: the question stays answered under that reply (Yes pressed) and is not asked again.
    assert page.locator(".rz-rate--ask").count() == 1
    assert page.locator(".rz-thumb[data-value=up]").get_attribute("aria-pressed") == "true"

    # The next substantive answer gets its own question, once: the old one goes.
    claude.enqueue(Reply(text="Deposits are optional: set them per table under Settings > Payments."))
    ask(page, "Do you take deposits for big tables?")
    wait_for_reply(page, 3)
    page.locator(".rz-thumb[data-value=up][aria-pressed=false]").wait_for()
    assert page.get_by_text(QUESTION).count() == 1
    assert page.locator(".rz-rate").count() == 1
    page.get_by_role("button", name="No, this didn't help").click()
    page.get_by_text("Thanks for your feedback.").wait_for()
    assert outcome() == Outcome.NEGATIVE
