# ruff: noqa: F811 - the chat fixtures are imported from tests.bot.test_chat and named as parameters
"""Ungrounded replies in analytics (issue 14): conversations with a reply that answered a product question
citing no article, counted from a daily rollup, drilled down to exactly those tickets, and reproduced by
rebuild_rollups."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from support import selectors
from support.bot import prompt
from support.models import Conversation, DailyGroundingRollup, KnowledgeArticle
from tests.bot.test_chat import BASE, chat_stream, claude, done_of, fake  # noqa: F401
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db


def chat(anon: APIClient, widget: Any, *texts: str) -> Conversation:
    created = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json").json()
    for text in texts:
        done_of(chat_stream(widget(created["token"]), created["id"], text))
    return Conversation.objects.get(pk=Conversation._meta.pk.to_python(created["id"]))


@pytest.fixture
def desk(claude: FakeClaude, anon: APIClient, widget: Any) -> list[Conversation]:
    """Two conversations with ungrounded answers (one has two), one cited answer, one greeting."""
    KnowledgeArticle.objects.all().delete()
    vouchers = KnowledgeArticle.objects.create(title="Gift vouchers", keywords="voucher", answer="A year.")
    claude.default = Reply(text="Sure, whatever you like!")  # cites nothing
    twice = chat(anon, widget, "Do vouchers expire?", "Can I refund a gift voucher?")
    once = chat(anon, widget, "How do SMS reminders work?")
    claude.enqueue(Reply(text="A year.", citations=[{"source": prompt.knowledge_source(vouchers)}]))
    cited = chat(anon, widget, "How long do vouchers last?")
    greeting = chat(anon, widget, "hello")
    return [twice, once, cited, greeting]


def test_ungrounded_conversations_are_counted_once_each_in_analytics(desk: list[Conversation]) -> None:
    assert selectors.analytics_summary(days=7)["ungrounded_conversations"] == 2


def test_the_card_drills_down_to_exactly_the_ungrounded_tickets(desk: list[Conversation], staff_user: Any) -> None:
    browser = Client()
    browser.force_login(staff_user)
    response = browser.get("/dashboard/analytics/?days=7")
    card = next(c for c in response.context["cards"] if c["label"] == "Answered without a source")
    assert (card["count"], card["value"]) == (2, "2")
    listed = browser.get(card["url"])
    assert {c.pk for c in listed.context["page"]} == {desk[0].pk, desk[1].pk}
    ticket = browser.get(f"/dashboard/conversations/{desk[0].pk}/").content.decode()
    assert ticket.count('class="badge ungrounded"') == 2


def test_rebuild_rollups_reproduces_the_figure(desk: list[Conversation]) -> None:
    before = selectors.analytics_summary(days=7)["ungrounded_conversations"]
    DailyGroundingRollup.objects.all().delete()
    assert selectors.analytics_summary(days=7)["ungrounded_conversations"] == 0
    call_command("rebuild_rollups", verbosity=0)
    assert selectors.analytics_summary(days=7)["ungrounded_conversations"] == before == 2


def test_the_ungrounded_figure_follows_the_business_filter_and_its_rebuild(desk: list[Conversation]) -> None:
    Conversation.objects.filter(pk=desk[0].pk).update(business_id="b7")
    call_command("rebuild_rollups", verbosity=0)
    assert selectors.analytics_summary(days=7, business_id="b7")["ungrounded_conversations"] == 1
    assert selectors.analytics_summary(days=7, business_id="b8")["ungrounded_conversations"] == 0
    assert selectors.analytics_summary(days=7)["ungrounded_conversations"] == 2
