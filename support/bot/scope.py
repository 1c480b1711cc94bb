"""Which knowledge articles apply to a conversation: global ones, and those scoped to its verified venue
and audience.

An article with business ids applies only to those businesses; one with an audience only to diners or
only to owners; blank means everyone. The business and audience come from the conversation only when its
identity is verified (support.identity): an unverified page's business_id is a claim anyone can type, so
it unlocks nothing and such a conversation sees the global articles only (the safe rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from support.models import Conversation


class Scoped(Protocol):
    business_ids: str
    audience: str


ArticleT = TypeVar("ArticleT", bound=Scoped)


def business_id_set(business_ids: str) -> frozenset[str]:
    """'b7, b9' -> {'b7', 'b9'}; ids compare exactly (case matters, as the site's own ids do)."""
    return frozenset(part.strip() for part in business_ids.split(",") if part.strip())


def applies(article: Scoped, *, business_id: str, audience: str) -> bool:
    businesses = business_id_set(article.business_ids)
    if businesses and business_id not in businesses:
        return False
    return not article.audience or article.audience == audience


def articles_for(articles: Iterable[ArticleT], *, business_id: str, audience: str) -> list[ArticleT]:
    """The articles (in the order given) that apply to `business_id` and `audience`; '' matches only
    global articles of that kind."""
    return [article for article in articles if applies(article, business_id=business_id, audience=audience)]


def trusted_scope(conversation: Conversation) -> tuple[str, str]:
    """(business_id, audience) that may scope the knowledge base: ('', '') unless the identity is verified."""
    if not conversation.identity_verified:
        return "", ""
    return conversation.business_id, conversation.audience


def articles_for_conversation(articles: Iterable[ArticleT], conversation: Conversation) -> list[ArticleT]:
    business_id, audience = trusted_scope(conversation)
    return articles_for(articles, business_id=business_id, audience=audience)
