"""Citations (issue 14): the knowledge base goes to Claude as citable search results, the reply's
citations are stored on the assistant turn and shown as Sources, and an uncited product answer is ungrounded."""

# ruff: noqa: F811 - the chat fixtures are imported from test_chat and named as parameters
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from support.bot import citations, prompt
from support.models import KnowledgeArticle
from tests.bot.test_chat import (  # noqa: F401 - fixtures
    chat_stream,
    claude,
    client,
    conversation,
    done_of,
    fake,
    no_key,
    reply_of,
)
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def vouchers() -> KnowledgeArticle:
    KnowledgeArticle.objects.all().delete()
    KnowledgeArticle.objects.create(title="Opening hours", keywords="open, hours", answer="We open at nine.", order=1)
    return KnowledgeArticle.objects.create(
        title="Gift vouchers",
        keywords="voucher, gift card",
        answer="Vouchers last a year.",
        public_url="https://rezvo.example/help/vouchers",
        order=2,
    )


def test_the_knowledge_base_is_sent_as_cached_citable_search_results(
    claude: FakeClaude, client: APIClient, conversation: dict, vouchers: KnowledgeArticle
) -> None:
    chat_stream(client, conversation["id"], "Do gift vouchers expire?")
    body = claude.last_request.body
    [system] = body["system"]
    assert "Vouchers last a year." not in system["text"], "the articles travel as search results, once"
    [first] = body["messages"]
    *results, question = first["content"]
    assert question == {"type": "text", "text": "Do gift vouchers expire?"}
    assert [(r["type"], r["title"], r["citations"]) for r in results] == [
        ("search_result", "Opening hours", {"enabled": True}),
        ("search_result", "Gift vouchers", {"enabled": True}),
    ]
    assert results[1]["source"] == prompt.knowledge_source(vouchers)
    assert results[1]["content"] == [{"type": "text", "text": "Vouchers last a year."}]
    assert "cache_control" not in results[0]
    assert results[-1]["cache_control"] == {"type": "ephemeral"}, "the whole knowledge base is a cache prefix"


def test_a_streamed_citation_is_stored_on_the_reply_and_sent_as_a_source(
    claude: FakeClaude, client: APIClient, conversation: dict, vouchers: KnowledgeArticle
) -> None:
    claude.enqueue(Reply(text="They last a year.", citations=[{"source": prompt.knowledge_source(vouchers)}]))
    done = done_of(chat_stream(client, conversation["id"], "Do gift vouchers expire?"))
    assert done["sources"] == [
        {"id": str(vouchers.pk), "title": "Gift vouchers", "url": "https://rezvo.example/help/vouchers"}
    ]
    message = reply_of(done)
    assert (message.cited_article_ids, message.is_ungrounded) == ([str(vouchers.pk)], False)


def test_an_uncited_answer_to_a_product_question_is_ungrounded(
    claude: FakeClaude, client: APIClient, conversation: dict, vouchers: KnowledgeArticle
) -> None:
    claude.enqueue(Reply(text="Vouchers never expire!"))
    done = done_of(chat_stream(client, conversation["id"], "Do gift vouchers expire?"))
    assert done["sources"] == []
    assert reply_of(done).is_ungrounded is True


@pytest.mark.parametrize("greeting", ["hi", "Thanks!", "ok great"])
def test_an_uncited_reply_to_small_talk_is_not_ungrounded(
    claude: FakeClaude, client: APIClient, conversation: dict, vouchers: KnowledgeArticle, greeting: str
) -> None:
    claude.enqueue(Reply(text="Hello! How can I help?"))
    assert reply_of(done_of(chat_stream(client, conversation["id"], greeting))).is_ungrounded is False


def test_a_hand_over_to_a_person_is_not_ungrounded(
    claude: FakeClaude, client: APIClient, conversation: dict, vouchers: KnowledgeArticle
) -> None:
    claude.enqueue(
        Reply(text="Let me get a colleague.", tool_use={"name": "escalate_to_human", "input": {"reason": "x"}})
    )
    assert (
        reply_of(done_of(chat_stream(client, conversation["id"], "Refund my gift voucher please"))).is_ungrounded
        is False
    )


def test_a_citation_of_a_source_outside_the_prompt_is_ignored(vouchers: KnowledgeArticle) -> None:
    hidden = KnowledgeArticle.objects.create(title="Hidden", answer="Secret.", active=False)
    sources = [prompt.knowledge_source(hidden), prompt.knowledge_source(vouchers), "kb:nonsense"]
    assert citations.cited_articles(sources=sources, articles=[vouchers]) == [vouchers]


def test_the_offline_responder_cites_the_article_it_answered_from(
    no_key: None, client: APIClient, conversation: dict, vouchers: KnowledgeArticle
) -> None:
    done = done_of(chat_stream(client, conversation["id"], "How long does a gift voucher last?"))
    assert done["text"] == "Vouchers last a year."
    assert [source["title"] for source in done["sources"]] == ["Gift vouchers"]
    message = reply_of(done)
    assert (message.cited_article_ids, message.is_ungrounded) == ([str(vouchers.pk)], False)
