# ruff: noqa: F811 - the chat fixtures are imported from tests.bot.test_chat and named as parameters
"""The knowledge-gaps page (issue 14): failed questions grouped by similarity, ranked, drillable to their
tickets, and closed by writing the article the page drafts."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from rest_framework.test import APIClient

from support import services
from support.bot import prompt
from support.models import Conversation, KnowledgeArticle, Message, Rating
from tests.bot.test_chat import API_KEY, BASE, chat_stream, claude, done_of, fake, reply_of  # noqa: F401
from tests.fakes.fake_claude import FakeClaude, Reply
from tests.fakes.venues import limit_to

pytestmark = pytest.mark.django_db

LOYALTY = ["Do you offer loyalty points?", "Can my customers earn loyalty points", "loyalty points for regulars?"]


@pytest.fixture
def offline(settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""


@pytest.fixture
def kb(db: None) -> None:
    KnowledgeArticle.objects.all().delete()
    services.knowledge_article_seed_samples()


def ask(anon: APIClient, widget: Any, text: str) -> tuple[Conversation, dict[str, Any]]:
    created = anon.post(f"{BASE}/conversations", {"source": "web"}, format="json").json()
    done = done_of(chat_stream(widget(created["token"]), created["id"], text))
    return Conversation.objects.get(pk=Conversation._meta.pk.to_python(created["id"])), done


def staff_page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def gap_rows(html: str) -> list[tuple[str, int]]:
    """(question shown, tickets) for each row of the gaps table, in order."""
    rows = re.findall(r'<tr data-key="[^"]+">\s*<td><a href="[^"]+">([^<]+)</a>.*?data-count="(\d+)"', html, re.S)
    return [(unescape(text), int(count)) for text, count in rows]


@pytest.fixture
def gaps(kb: None, offline: None, anon: APIClient, widget: Any, staff_user: Any) -> list[Conversation]:
    """Three offline no-answers about loyalty points (one answered by a person), one about gift cards."""
    made = [ask(anon, widget, text)[0] for text in LOYALTY]
    services.conversation_reply(
        conversation=made[0], author=staff_user, content="Yes: turn on Rewards in Settings > Loyalty."
    )
    made.append(ask(anon, widget, "Can I sell gift cards online?")[0])
    assert all(c.escalation_reason == "no_answer" for c in Conversation.objects.all())
    return made


def test_failed_questions_are_grouped_by_similarity_and_ranked_by_tickets(gaps: list, admin_client_for: Client) -> None:
    rows = gap_rows(staff_page(admin_client_for, "/dashboard/gaps/"))
    assert [count for _, count in rows] == [3, 1]
    assert rows[0][0] in LOYALTY
    assert rows[1][0] == "Can I sell gift cards online?"


def test_a_thumbs_down_and_an_ungrounded_reply_are_gaps_too(
    kb: None, claude: FakeClaude, anon: APIClient, widget: Any, admin_client_for: Client
) -> None:
    claude.enqueue(Reply(text="Sure, all plans include loyalty points!"))  # no citation: ungrounded
    ask(anon, widget, "Do you offer loyalty points?")
    claude.enqueue(Reply(text="Yes, see Settings."))
    rated, done = ask(anon, widget, "How do I set up loyalty points for regulars")
    Conversation.objects.filter(pk=rated.pk).update(rating=Rating.DOWN, rated_message=reply_of(done))
    html = staff_page(admin_client_for, "/dashboard/gaps/")
    assert [count for _, count in gap_rows(html)] == [2]
    assert "answered without a source" in html and "thumbs-down" in html


def test_small_talk_is_no_gap(kb: None, offline: None, anon: APIClient, widget: Any, admin_client_for: Client) -> None:
    conversation, _ = ask(anon, widget, "hi")
    Conversation.objects.filter(pk=conversation.pk).update(escalated=True, escalation_reason="no_answer")
    assert gap_rows(staff_page(admin_client_for, "/dashboard/gaps/")) == []


def test_the_gaps_pages_are_for_staff_only(gaps: list, customer_user: Any) -> None:
    client = Client()
    assert client.get("/dashboard/gaps/").status_code == 302  # to the login page
    client.force_login(customer_user)
    assert client.get("/dashboard/gaps/").status_code == 403


def test_a_group_drills_down_to_its_tickets(gaps: list, admin_client_for: Client) -> None:
    listing = staff_page(admin_client_for, "/dashboard/gaps/?days=7")
    url = unescape(re.search(r'<tr data-key="[^"]+">\s*<td><a href="([^"]+)"', listing).group(1))
    detail = staff_page(admin_client_for, url)
    linked = set(re.findall(r'href="/dashboard/conversations/([^/"]+)/"', detail))
    assert linked == {str(c.pk) for c in gaps[:3]}, "the drill-down lists exactly the tickets counted"
    assert 'data-count="3"' in detail
    assert "Yes: turn on Rewards in Settings &gt; Loyalty." in detail
    assert admin_client_for.get("/dashboard/gaps/nonexistent0/").status_code == 404


def test_writing_the_drafted_article_answers_the_question_and_closes_the_gap(
    gaps: list, admin_client_for: Client, claude: FakeClaude, anon: APIClient, widget: Any, settings: Any
) -> None:
    listing = staff_page(admin_client_for, "/dashboard/gaps/")
    detail = staff_page(admin_client_for, unescape(re.search(r'<td><a href="([^"]+)"', listing).group(1)))
    write = urlparse(unescape(re.search(r'<a class="button primary" href="([^"]+)">Write an article', detail).group(1)))
    assert write.path == "/admin/support/knowledgearticle/add/"
    draft = {name: values[0] for name, values in parse_qs(write.query).items()}
    assert all(text in draft["answer"] for text in LOYALTY)
    assert "Yes: turn on Rewards in Settings > Loyalty." in draft["answer"]
    assert {"loyalty", "point"} <= set(draft["keywords"].split(", "))
    form = staff_page(admin_client_for, f"{write.path}?{write.query}")
    assert 'value="loyalty' in form or "loyalty" in form.split('name="keywords"')[1][:300], "the form is prefilled"

    answer = "Yes: turn on Rewards in Settings > Loyalty, and customers earn points on every booking."
    posted = admin_client_for.post(
        write.path, {**draft, "answer": answer, "public_url": "", "active": "on", "order": "0"}
    )
    assert posted.status_code == 302, posted.content[:2000]
    article = KnowledgeArticle.objects.get(title=draft["title"])

    settings.ANTHROPIC_API_KEY = ""  # the offline responder answers from it and cites it
    _, done = ask(anon, widget, LOYALTY[0])
    assert (done["text"], [s["title"] for s in done["sources"]]) == (answer, [article.title])
    settings.ANTHROPIC_API_KEY = API_KEY  # and Claude is given it as a citable search result
    claude.enqueue(Reply(text="Yes, with Rewards.", citations=[{"source": prompt.knowledge_source(article)}]))
    _, done = ask(anon, widget, LOYALTY[1])
    assert [s["title"] for s in done["sources"]] == [article.title]
    assert article.title in [result["title"] for result in claude.last_request.search_results]

    rows = gap_rows(staff_page(admin_client_for, "/dashboard/gaps/"))
    assert rows == [("Can I sell gift cards online?", 1)], "the loyalty group dropped off the page"
    assert Message.objects.filter(cited_article_ids__isnull=False).exists()


def test_a_staff_user_limited_to_a_business_sees_only_its_gaps(gaps: list, staff_user: Any) -> None:
    Conversation.objects.filter(pk=gaps[-1].pk).update(business_id="b7")  # the gift-card question
    limit_to(staff_user, "b7")
    browser = Client()
    browser.force_login(staff_user)
    rows = gap_rows(staff_page(browser, "/dashboard/gaps/"))
    assert rows == [("Can I sell gift cards online?", 1)]
