"""Writes to the knowledge base."""

from __future__ import annotations

import logging

from django.conf import settings

from support.bot import knowledge
from support.models import (
    KnowledgeArticle,
)

logger = logging.getLogger(__name__)


def knowledge_article_seed_samples(*, using: str = "default") -> int:
    """Add the sample articles that are missing (by title); returns how many were added.

    The data migration calls the same code, so a fresh install answers pricing, getting-started,
    contact and booking questions before anyone edits the knowledge base.
    """
    return knowledge.seed_samples(KnowledgeArticle, support_email=settings.SUPPORT_EMAIL, using=using)
