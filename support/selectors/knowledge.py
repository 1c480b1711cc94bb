"""The knowledge base the bot answers from."""

from __future__ import annotations

from django.db.models import QuerySet

from support.models import KnowledgeArticle


def knowledge_article_list_active() -> QuerySet[KnowledgeArticle]:
    """Active articles in display order; the order is stable so the compiled prompt (and its cache) is too."""
    return KnowledgeArticle.objects.filter(active=True).order_by("order", "title", "pk")
