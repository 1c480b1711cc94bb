"""The knowledge base: offline scoring, the shipped samples, the compiled prompt and the admin."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.test import Client

from support import selectors, services
from support.bot import knowledge
from support.bot.prompt import system_prompt
from support.models import KnowledgeArticle


class Article:
    def __init__(self, title: str, keywords: str = "", answer: str = "") -> None:
        self.title, self.keywords, self.answer = title, keywords, answer or title


# --- Scoring (pure) --------------------------------------------------------------------------
def test_each_keyword_phrase_found_scores_its_number_of_words() -> None:
    article = Article("Pricing", keywords="cost, how much, plan")
    assert knowledge.score(article, "How much does a plan cost?") == 2 + 1 + 1
    assert knowledge.score(article, "How many staff?") == 0


def test_title_words_count_but_common_words_do_not() -> None:
    article = Article("How to reset your password")
    assert knowledge.score(article, "I need a new password") == 1
    assert knowledge.score(article, "how do you do it") == 0


def test_matching_is_on_whole_words_with_plurals_folded() -> None:
    greeting = Article("Greeting", keywords="hi")
    assert knowledge.score(greeting, "Is this the right place?") == 0, "'hi' is not in 'this'"
    assert knowledge.score(greeting, "Hi there") == 1
    bookings = Article("Bookings", keywords="reservation")
    assert knowledge.score(bookings, "Where are my reservations?") == 1
    assert knowledge.score(bookings, "Can I see a booking?") == 1


def test_a_keyword_repeated_in_another_spelling_counts_once() -> None:
    assert knowledge.score(Article("x", keywords="fee, fees, Fee"), "what fees are there") == 1


def test_the_best_article_wins_and_the_first_one_wins_a_tie() -> None:
    first = Article("First", keywords="deposit")
    second = Article("Second", keywords="deposit")
    better = Article("Better", keywords="deposit, refund a deposit")
    assert knowledge.best_match([first, second], "deposit?").article is first
    assert knowledge.best_match([first, better], "How do I refund a deposit?").article is better
    assert knowledge.best_match([first, second], "Nothing relevant") is None


# --- The shipped sample knowledge base -------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("How much does Rezvo cost?", "Pricing and plans"),
        ("Is there a free plan?", "Pricing and plans"),
        ("How do I get started?", "Getting started"),
        ("How can I sign up?", "Getting started"),
        ("How do I contact you?", "Contacting support"),
        ("What's your email?", "Contacting support"),
        ("How do I cancel a booking?", "Managing bookings"),
        ("I forgot my password", "Logging in and passwords"),
    ],
)
def test_the_sample_knowledge_base_answers_the_common_questions(question: str, title: str) -> None:
    services.knowledge_article_seed_samples()
    match = knowledge.best_match(selectors.knowledge_article_list_active(), question)
    assert match is not None and match.article.title == title


@pytest.mark.django_db
def test_the_samples_fill_in_the_configured_support_email(settings: Any) -> None:
    services.knowledge_article_seed_samples()
    settings.SUPPORT_EMAIL = "desk@example.org"
    KnowledgeArticle.objects.filter(title="Contacting support").delete()
    assert services.knowledge_article_seed_samples() == 1, "only the missing article is added back"
    assert "desk@example.org" in KnowledgeArticle.objects.get(title="Contacting support").answer


@pytest.mark.django_db
def test_seeding_twice_adds_nothing_the_second_time() -> None:
    services.knowledge_article_seed_samples()
    count = KnowledgeArticle.objects.count()
    assert count >= len(knowledge.SAMPLE_ARTICLES)
    assert services.knowledge_article_seed_samples() == 0
    assert KnowledgeArticle.objects.count() == count


@pytest.mark.django_db
@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="each MongoDB test starts from empty collections")
def test_migrating_a_fresh_database_ships_the_sample_articles() -> None:
    # On SQLite the test database was built by the migrations and each test rolls back to it.
    titles = set(KnowledgeArticle.objects.values_list("title", flat=True))
    assert {title for title, _, _ in knowledge.SAMPLE_ARTICLES} <= titles


# --- The compiled prompt ---------------------------------------------------------------------
@pytest.mark.django_db
def test_the_system_prompt_holds_the_active_articles_in_order(settings: Any) -> None:
    settings.SUPPORT_PRODUCT_NAME = "Acme Tables"
    settings.SUPPORT_EMAIL = "help@acme.test"
    KnowledgeArticle.objects.all().delete()
    KnowledgeArticle.objects.create(title="Second", answer="Answer two.", order=2)
    KnowledgeArticle.objects.create(title="First", answer="Answer one.", order=1)
    KnowledgeArticle.objects.create(title="Hidden", answer="Secret.", order=0, active=False)
    prompt = system_prompt(articles=list(selectors.knowledge_article_list_active()))
    assert "Acme Tables" in prompt and "help@acme.test" in prompt
    assert prompt.index("## First\nAnswer one.") < prompt.index("## Second\nAnswer two.")
    assert "Secret." not in prompt
    again = system_prompt(articles=list(selectors.knowledge_article_list_active()))
    assert prompt == again, "the same articles give the same bytes, or the prompt cache would miss"


# --- Admin -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_staff_edit_articles_in_the_admin(django_user_model: Any) -> None:
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "correct-horse-battery")
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/support/knowledgearticle/add/",
        {"title": "Gift cards", "keywords": "gift card, voucher", "answer": "They last a year.", "order": 5},
    )
    assert response.status_code == 302, response.content[:500]
    article = KnowledgeArticle.objects.get(title="Gift cards")
    assert article.active is False, "an unticked checkbox is inactive"
    listing = client.get("/admin/support/knowledgearticle/")
    assert listing.status_code == 200 and b"Gift cards" in listing.content
