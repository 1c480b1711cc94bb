# ruff: noqa: F811 - the chat fixtures are imported from test_chat and named as parameters
"""Retrieval (issue 14): the whole knowledge base while it fits SUPPORT_KB_PROMPT_TOKENS, else BM25's best
articles per question, from an index rebuilt when an article changes."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from support import selectors
from support.bot import retrieval
from support.models import KnowledgeArticle
from tests.bot.test_chat import chat_stream, claude, client, conversation, fake  # noqa: F401 - fixtures
from tests.fakes.fake_claude import FakeClaude

pytestmark = pytest.mark.django_db

TOPICS = [
    ("Gift vouchers", "voucher, gift card", "Vouchers last a year from the day they are bought."),
    ("Opening hours", "open, hours, closing time", "Set your opening hours in Settings > Hours."),
    ("SMS reminders", "sms, text message, reminder", "Reminders go out by SMS a day before each booking."),
    ("Staff rota", "rota, shift, staff schedule", "Plan shifts for each staff member on the rota page."),
    ("Deposits", "deposit, prepayment", "Ask for a deposit when customers book online."),
    ("Exporting data", "export, csv, download", "Download every booking as CSV from Reports."),
]


@pytest.fixture
def articles() -> list[KnowledgeArticle]:
    KnowledgeArticle.objects.all().delete()
    for order, (title, keywords, answer) in enumerate(TOPICS):
        KnowledgeArticle.objects.create(title=title, keywords=keywords, answer=answer, order=order)
    return list(selectors.knowledge_article_list_active())


def test_every_article_goes_in_display_order_while_they_fit_the_budget(articles: list, settings: Any) -> None:
    settings.SUPPORT_KB_PROMPT_TOKENS = sum(retrieval.article_tokens(a) for a in articles)
    chosen = retrieval.prompt_articles(articles=articles, question="How do SMS reminders work?")
    assert (chosen.articles, chosen.whole) == (articles, True)


def test_past_the_budget_bm25_picks_the_best_articles_for_the_question(articles: list, settings: Any) -> None:
    settings.SUPPORT_KB_PROMPT_TOKENS = sum(retrieval.article_tokens(a) for a in articles) - 1
    settings.SUPPORT_KB_RETRIEVAL_TOP_K = 2
    chosen = retrieval.prompt_articles(articles=articles, question="Can I download my bookings as a CSV?")
    assert chosen.whole is False
    assert chosen.articles[0].title == "Exporting data"
    assert len(chosen.articles) <= 2


def test_the_pick_never_passes_the_token_budget(articles: list, settings: Any) -> None:
    settings.SUPPORT_KB_PROMPT_TOKENS = retrieval.article_tokens(articles[0]) + 1
    chosen = retrieval.prompt_articles(articles=articles, question="voucher deposit reminder sms export hours")
    assert sum(retrieval.article_tokens(a) for a in chosen.articles) <= settings.SUPPORT_KB_PROMPT_TOKENS


def one_article_budget(articles: list) -> int:
    """Room for any one article, never for all of them: retrieval is on."""
    return max(retrieval.article_tokens(a) for a in articles) + 1


def test_a_question_with_no_matching_words_gets_no_articles(articles: list, settings: Any) -> None:
    settings.SUPPORT_KB_PROMPT_TOKENS = one_article_budget(articles)
    assert retrieval.prompt_articles(articles=articles, question="zzz qqq").articles == []


def test_the_index_is_rebuilt_when_an_article_changes(articles: list, settings: Any) -> None:
    settings.SUPPORT_KB_PROMPT_TOKENS = one_article_budget(articles)
    question = "Do you support loyalty points?"
    assert retrieval.prompt_articles(articles=articles, question=question).articles == []
    rota = KnowledgeArticle.objects.get(title="Staff rota")
    rota.keywords += ", loyalty points"
    rota.save()  # same primary keys: only the version bumped by the save signal can tell
    fresh = list(selectors.knowledge_article_list_active())
    assert [a.title for a in retrieval.prompt_articles(articles=fresh, question=question).articles] == ["Staff rota"]


def test_claude_gets_only_the_picked_articles_and_no_cache_marker_on_them(
    claude: FakeClaude, client: APIClient, conversation: dict, articles: list, settings: Any
) -> None:
    settings.SUPPORT_KB_PROMPT_TOKENS = retrieval.article_tokens(articles[0]) * 2
    chat_stream(client, conversation["id"], "How long do gift vouchers last?")
    results = claude.last_request.search_results
    assert results and results[0]["title"] == "Gift vouchers"
    assert len(results) < len(articles)
    assert not any("cache_control" in result for result in results)
