"""The knowledge base in the bot: the offline responder's article selection, and the sample articles.

Scoring and selection are pure functions of the articles they are given (the chat turn reads the
active ones through support.selectors). `seed_samples` is the one writer: it saves the sample articles
through the model class it is given, so the data migrations can pass their historical model.

The offline responder answers when Claude cannot (no API key, an outage after retries, the daily budget spent).
It scores each active article the way the site's original widget did: every keyword phrase found in the
question adds its number of words (so 'how much' beats 'much'), and every title word found adds one.
Matching is on whole words, so 'hi' does not match inside 'this'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

#: Title words too common to say anything about the question.
STOP_WORDS = frozenset(
    """a an and are as at be by can do does for from how i in is it me my of on or our the this to we what
    when where which who why with you your""".split()
)


class Article(Protocol):
    title: str
    keywords: str
    answer: str


def words(text: str) -> list[str]:
    """Lower-case words with a light plural stem, so 'bookings' matches 'booking'."""
    return [_stem(word) for word in _WORD.findall(text.lower())]


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def keyword_phrases(keywords: str) -> list[tuple[str, ...]]:
    """Distinct phrases in order; 'fee, fees' is one phrase once stemmed, so it counts once."""
    phrases: dict[tuple[str, ...], None] = {}
    for raw in keywords.split(","):
        phrase = tuple(words(raw))
        if phrase:
            phrases.setdefault(phrase)
    return list(phrases)


def _contains(haystack: Sequence[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(haystack[i : i + size]) == phrase for i in range(len(haystack) - size + 1))


def score(article: Article, question: str) -> int:
    """How well `article` fits `question`: keyword phrase words found, plus title words found."""
    asked = words(question)
    if not asked:
        return 0
    asked_set = set(asked)
    total = sum(len(phrase) for phrase in keyword_phrases(article.keywords) if _contains(asked, phrase))
    title_words = {w for w in words(article.title) if w not in STOP_WORDS and len(w) > 2}
    return total + len(title_words & asked_set)


@dataclass(frozen=True)
class Match:
    article: Article
    score: int


def best_match(articles: Iterable[Article], question: str) -> Match | None:
    """The highest-scoring article (the first one wins a tie, so keep them in display order), or None."""
    best: Match | None = None
    for article in articles:
        points = score(article, question)
        if points > 0 and (best is None or points > best.score):
            best = Match(article=article, score=points)
    return best


# --- Sample knowledge base, shipped so a fresh install answers ------------------------------
#: (title, keywords, answer) in display order. `{support_email}` is filled in from settings when seeded.
SAMPLE_ARTICLES: tuple[tuple[str, str, str], ...] = (
    (
        "Pricing and plans",
        "price, pricing, cost, costs, how much, plan, plans, subscription, free, tier, fee, fees, commission, "
        "monthly, trial, upgrade",
        "Rezvo has a free plan to get you started, and paid monthly plans that add more staff, SMS reminders, "
        "deposits and reporting. There is no commission on bookings on any plan, and every paid plan starts "
        "with a free trial. You can change or cancel your plan at any time from Settings > Billing. "
        "Current prices are on our pricing page.",
    ),
    (
        "Getting started",
        "get started, getting started, start, sign up, signup, register, create account, set up, setup, "
        "begin, new account, onboarding, first steps",
        "Getting started takes a few minutes: 1) sign up with your email (no card needed), "
        "2) add your business details, opening hours and services, 3) invite your staff, "
        "4) share your booking link or add the booking widget to your website. "
        "You can take bookings as soon as step 2 is done.",
    ),
    (
        "Contacting support",
        "contact, contact you, email, phone, call, support team, get in touch, reach you, complaint, "
        "feedback, speak to someone",
        "You can reach our support team at {support_email}. We reply within one working day, usually much "
        "sooner. Include your business name and what you were trying to do, and we will take it from there.",
    ),
    (
        "Managing bookings",
        "booking, bookings, book, reservation, reservations, appointment, appointments, cancel, cancellation, "
        "reschedule, change booking, move booking, no show, no-show, calendar, deposit, reminder",
        "Every booking is on your calendar in the dashboard. Click a booking to change its time, move it to "
        "another staff member or cancel it; the customer is emailed automatically. Customers can also "
        "reschedule or cancel themselves from the link in their confirmation email, within the cancellation "
        "window you set in Settings > Bookings. Deposits and SMS reminders help cut no-shows.",
    ),
    (
        "Logging in and passwords",
        "log in, login, sign in, password, forgot password, reset password, locked out, can't log in, "
        "two factor, 2fa, account access",
        "To reset your password, click 'Forgot password' on the login page and follow the link we email you "
        "(check your spam folder if it has not arrived within a few minutes). If you still cannot get in, "
        "tell us the email address on the account and we will help.",
    ),
)


def sample_articles(*, support_email: str) -> list[dict[str, Any]]:
    """The sample articles as field values, ready for KnowledgeArticle(**values)."""
    return [
        {
            "title": title,
            "keywords": keywords,
            "answer": answer.replace("{support_email}", support_email),
            "active": True,
            "order": (index + 1) * 10,
        }
        for index, (title, keywords, answer) in enumerate(SAMPLE_ARTICLES)
    ]


def seed_samples(model: Any, *, support_email: str, using: str = "default") -> int:
    """Create the sample articles whose titles are missing; returns how many were added.

    Takes the model class so the data migration can pass its historical model and tests the real one.
    """
    existing = set(model.objects.using(using).values_list("title", flat=True))
    samples = sample_articles(support_email=support_email)
    added = [model(**values) for values in samples if values["title"] not in existing]
    for article in added:
        article.save(using=using)
    return len(added)


# --- Is this a product question? (issue 14: an uncited answer to one is ungrounded) ----------
#: Words of greetings, thanks and acknowledgements: a turn made only of these asks nothing.
SMALL_TALK = frozenset(
    """hi hello hey hiya yo thank thanks thx cheers ok okay k cool great good fine nice bye goodbye morning
    afternoon evening night yes yeah yep no nope sure please lol ty""".split()
)


def content_words(text: str) -> list[str]:
    """The words that carry meaning: stemmed, without stop words or small talk."""
    return [w for w in words(text) if w not in STOP_WORDS and w not in SMALL_TALK]


def is_product_question(text: str) -> bool:
    """At least two meaningful words: 'hi', 'thanks!' and 'ok great' are not questions about the product."""
    return len(content_words(text)) >= 2
