"""The articles the bot answers from."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from support.models.choices import Audience


class KnowledgeArticle(models.Model):
    """One answer the bot knows: compiled into Claude's system prompt and used by the offline responder."""

    title = models.CharField(max_length=200, help_text="What the article answers, e.g. 'Pricing and plans'.")
    keywords = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Comma-separated words or phrases a customer might use, e.g. 'price, cost, how much, plans'. "
        "The offline responder scores a question by the keywords and title words it contains.",
    )
    answer = models.TextField(help_text="The answer, as the bot should give it.")
    active = models.BooleanField(default=True, help_text="Inactive articles are neither sent to Claude nor used.")
    public_url = models.URLField(
        max_length=2048,
        blank=True,
        help_text="Where customers can read this article on the website; the widget links its 'Sources' to it. "
        "Empty: the source is shown by title only.",
    )
    order = models.IntegerField(default=0, help_text="Lower first, in the prompt and when two answers tie.")
    business_ids = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Comma-separated business ids this article is for, e.g. 'b7, b9'; blank: every business. "
        "A scoped article reaches only conversations whose identity is verified for one of these businesses.",
    )
    audience = models.CharField(
        max_length=8,
        choices=Audience.choices,
        blank=True,
        help_text="Only for diners or only for owners (verified conversations only); blank: everyone.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "support_knowledge_articles"
        ordering = ["order", "title"]
        indexes = [models.Index(fields=["active", "order"], name="kb_active_order_idx")]

    def __str__(self) -> str:
        return self.title


class DailyGroundingRollup(models.Model):
    """Conversations started on `day` (per source) in which Claude gave at least one ungrounded reply: an
    answer to a product question citing no article (issue 14). Kept by support.services.grounding; rebuilt
    by `manage.py rebuild_rollups`."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    source = models.CharField(max_length=20, help_text="The conversations' source (Conversation.source).")
    business_id = models.CharField(max_length=128, blank=True, default="", help_text="The conversations' business.")
    audience = models.CharField(max_length=10, blank=True, default="", help_text="The conversations' audience.")
    ungrounded_conversations = models.BigIntegerField(
        default=0, help_text="Conversations with at least one ungrounded reply."
    )

    class Meta:
        db_table = "support_rollup_grounding"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "business_id", "audience"], name="uniq_rollup_grounding_key"
            )
        ]
        # A window of days from an index on any MongoDB: the unique key's index is partial there (a type
        # check per field), which no range query may use.
        indexes = [models.Index(fields=["day"], name="rollup_grounding_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.source}: {self.ungrounded_conversations} ungrounded"
