"""Knowledge articles scoped to businesses and audiences: only the applicable ones reach Claude's prompt or
the offline responder, and a business's profile names its own support email in hand-offs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from support import business_hours, identity
from support.bot import scope
from support.models import BusinessProfile, Conversation, EscalationReason, KnowledgeArticle
from tests.bot.test_chat import API_KEY, chat_stream, deltas_of
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db

BASE = "/api/support"
SECRET = "scope-test-secret"


@pytest.fixture
def claude(settings: Any) -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        settings.ANTHROPIC_API_KEY = API_KEY
        settings.ANTHROPIC_BASE_URL = fake.base_url
        settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
        yield fake


@pytest.fixture
def articles(settings: Any) -> None:
    settings.SUPPORT_IDENTITY_SECRET = SECRET
    KnowledgeArticle.objects.all().delete()
    KnowledgeArticle.objects.create(title="Opening hours", keywords="open", answer="Everyone: we open at noon.")
    KnowledgeArticle.objects.create(
        title="Sette parking", keywords="parking", answer="B7 SECRET: park behind the kitchen.", business_ids="b7"
    )
    KnowledgeArticle.objects.create(
        title="Otto parking", keywords="parking", answer="B8: park on the street.", business_ids="b6, b8"
    )
    KnowledgeArticle.objects.create(
        title="Payouts", keywords="payout", answer="OWNERS ONLY: payouts on Fridays.", audience="owner"
    )


def _start(user_id: str, business_id: str, *, audience: str = "diner", verified: bool = True) -> APIClient:
    body = {"user_id": user_id, "business_id": business_id, "audience": audience}
    if verified:
        body["user_hash"] = identity.user_hash(user_id, secret=SECRET)
    created = APIClient().post(f"{BASE}/conversations", body, format="json").json()
    client = APIClient()
    client.credentials(HTTP_X_CONVERSATION_TOKEN=created["token"])
    client.conversation_id = created["id"]  # type: ignore[attr-defined]
    return client


def _ask(client: APIClient, text: str) -> str:
    return deltas_of(chat_stream(client, client.conversation_id, text))  # type: ignore[attr-defined]


def test_an_article_for_b7_never_reaches_a_prompt_for_b8(claude: FakeClaude, articles: None) -> None:
    _ask(_start("u8", "b8"), "Where can I park?")
    # The articles travel as cited search results in the messages, the instructions in the system prompt.
    system = json.dumps(claude.last_request.body)
    assert "B8: park on the street." in system
    assert "Everyone: we open at noon." in system
    assert "B7 SECRET" not in system
    assert "OWNERS ONLY" not in system  # a diner: the owners' article stays out too


def test_a_verified_owner_at_b7_gets_b7s_and_the_owners_articles(claude: FakeClaude, articles: None) -> None:
    _ask(_start("o7", "b7", audience="owner"), "When are payouts?")
    system = json.dumps(claude.last_request.body)
    assert "B7 SECRET" in system and "OWNERS ONLY" in system
    assert "B8: park" not in system


def test_an_unverified_page_naming_b7_gets_only_the_global_articles(claude: FakeClaude, articles: None) -> None:
    _ask(_start("u7", "b7", audience="owner", verified=False), "Where can I park?")
    system = json.dumps(claude.last_request.body)
    assert "Everyone: we open at noon." in system
    for private in ("B7 SECRET", "B8: park", "OWNERS ONLY"):
        assert private not in system


def test_the_offline_responder_answers_from_the_verified_venues_articles_only(articles: None, settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""
    assert "B8: park on the street." in _ask(_start("u8", "b8"), "Is there parking?")
    assert "B7 SECRET" in _ask(_start("u7", "b7"), "Is there parking?")
    unverified = _ask(_start("x7", "b7", verified=False), "Is there parking?")
    assert "B7 SECRET" not in unverified and "B8" not in unverified
    assert "support team" in unverified  # no article applies: handed to a person


def test_a_business_profile_names_its_support_email_in_the_hand_off(articles: None, settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""
    BusinessProfile.objects.create(business_id="b7", support_email="help@sette.example")
    assert "help@sette.example" in _ask(_start("u7", "b7"), "Can I speak to a person?")
    assert settings.SUPPORT_EMAIL in _ask(_start("u8", "b8"), "Can I speak to a person?")


def test_the_prompt_names_the_business_support_email(claude: FakeClaude, articles: None) -> None:
    BusinessProfile.objects.create(business_id="b7", support_email="help@sette.example")
    _ask(_start("u7", "b7"), "Hello")
    assert "help@sette.example" in claude.last_request.body["system"][0]["text"]


# --- The scoping rule on its own ------------------------------------------------------------------
def test_business_ids_are_split_on_commas_and_compared_exactly() -> None:
    assert scope.business_id_set(" b7, b9 ,,") == {"b7", "b9"}
    article = KnowledgeArticle(title="t", answer="a", business_ids="b7,b9", audience="")
    assert scope.applies(article, business_id="b9", audience="")
    assert not scope.applies(article, business_id="B7", audience="")
    assert not scope.applies(article, business_id="", audience="")


def test_a_business_profiles_hours_say_when_its_people_are_back(articles: None, settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""
    settings.SUPPORT_BUSINESS_HOURS = ""  # the site is always open; venue b7 opens one minute a week
    hours = "UTC; Mon 00:00-00:01"
    BusinessProfile.objects.create(business_id="b7", business_hours=hours)
    if business_hours.is_open(timezone.now(), business_hours.parse(hours)):
        pytest.skip("the one open minute of the week")
    assert "We're back at 00:00" in _ask(_start("u7", "b7"), "Can I speak to a person?")
    assert "We're back" not in _ask(_start("u8", "b8"), "Can I speak to a person?")


def test_a_reply_giving_the_business_support_email_is_flagged_for_a_person(claude: FakeClaude, articles: None) -> None:
    BusinessProfile.objects.create(business_id="b7", support_email="help@sette.example")
    claude.enqueue(Reply(text="Please write to help@sette.example about that."))
    client = _start("u7", "b7")
    _ask(client, "Can I bring a dog?")
    conversation = Conversation.objects.get(pk=client.conversation_id)  # type: ignore[attr-defined]
    assert conversation.escalated and conversation.escalation_reason == EscalationReason.SUPPORT_EMAIL
