"""The widget shows the articles an answer cited under it as "Sources" (issue 14), in headless Chromium."""

# ruff: noqa: F811 - the claude fixture is imported from test_widget_e2e and named as a parameter
from __future__ import annotations

from typing import Any

import pytest

from support.bot import prompt
from support.models import KnowledgeArticle
from tests.e2e.test_widget_e2e import ask, claude, demo_url, open_widget, wait_for_reply  # noqa: F401 - fixture
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = [pytest.mark.browser]


@pytest.fixture
def vouchers(db: None) -> KnowledgeArticle:
    KnowledgeArticle.objects.all().delete()
    KnowledgeArticle.objects.create(title="Opening hours", keywords="open, hours", answer="We open at nine.")
    return KnowledgeArticle.objects.create(
        title="Gift vouchers",
        keywords="voucher, gift card",
        answer="Vouchers last a year.",
        public_url="https://rezvo.example/help/vouchers",
    )


def test_a_cited_answer_lists_its_sources_linked_to_their_public_pages(
    live_server: Any,
    page: Any,
    claude: FakeClaude,
    vouchers: KnowledgeArticle,
) -> None:
    claude.enqueue(Reply(text="They last a year.", citations=[{"source": prompt.knowledge_source(vouchers)}]))
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "Do gift vouchers expire?")
    reply = wait_for_reply(page, 1)
    sources = reply.locator(".rz-sources")
    assert sources.locator(".rz-sources-title").inner_text() == "Sources"
    link = sources.get_by_role("link", name="Gift vouchers")
    assert link.get_attribute("href") == "https://rezvo.example/help/vouchers"
    assert link.get_attribute("rel") == "noopener noreferrer"


def test_an_answer_with_no_citation_shows_no_sources(
    live_server: Any,
    page: Any,
    claude: FakeClaude,
    vouchers: KnowledgeArticle,
) -> None:
    claude.enqueue(Reply(text="Hello there!"))
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "hi")
    reply = wait_for_reply(page, 1)
    assert reply.locator(".rz-sources").count() == 0


def test_an_offline_answer_names_its_article_even_without_a_public_page(
    live_server: Any, page: Any, vouchers: KnowledgeArticle, settings: Any
) -> None:
    settings.ANTHROPIC_API_KEY = ""
    page.goto(demo_url(live_server))
    open_widget(page)
    ask(page, "What are your opening hours?")
    sources = wait_for_reply(page, 1).locator(".rz-sources")
    assert sources.locator("li").inner_text() == "Opening hours"
    assert sources.get_by_role("link").count() == 0
