"""What a reply is grounded in: the articles it cited, and whether it answered a product question uncited.

Claude's citations name search results by their `source` (support.bot.prompt.knowledge_source); only
sources of articles that were in this call's prompt count, so a reply cannot cite what it was not given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from support.bot import knowledge, prompt


def cited_articles(*, sources: Sequence[str], articles: Sequence[Any]) -> list[Any]:
    """The articles behind `sources`, in citation order; unknown sources are ignored."""
    by_source = {prompt.knowledge_source(article): article for article in articles}
    return [by_source[source] for source in dict.fromkeys(sources) if source in by_source]


def is_ungrounded(*, question: str, reply_text: str, cited: Sequence[Any], handed_over: bool) -> bool:
    """Claude answered a product question and cited nothing. A hand-over to a person is not an answer,
    and neither is an empty reply."""
    return bool(reply_text.strip()) and not cited and not handed_over and knowledge.is_product_question(question)


def sources_payload(articles: Sequence[Any]) -> list[dict[str, str]]:
    """The widget's 'Sources': title, and the public link when the article has one."""
    return [{"id": str(article.pk), "title": article.title, "url": article.public_url or ""} for article in articles]
