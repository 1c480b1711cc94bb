"""Daily rollups and the day's Claude spend."""

from __future__ import annotations

from django.db import models

from support.models.choices import (
    Audience,
    Outcome,
    Source,
    Status,
)


def _business_field() -> models.CharField:
    return models.CharField(
        max_length=128, blank=True, default="", help_text="The conversations' business_id (blank: none given)."
    )


def _audience_field() -> models.CharField:
    return models.CharField(
        max_length=10, choices=Audience.choices, blank=True, default="", help_text="The conversations' audience."
    )


# --- Daily rollups ---------------------------------------------------------------------------
# Analytics read these instead of scanning conversations and messages, so a window costs
# O(days), not O(messages). A conversation, its turns and its cost all count on the day (UTC) the
# conversation started, so every figure is a sum over exactly the conversations a drill-down lists.
# Services keep them current; `manage.py rebuild_rollups` recomputes them from scratch.


class DailyConversationRollup(models.Model):
    """How many conversations started on `day` are now in each state; each conversation is in one row."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    source = models.CharField(max_length=20, choices=Source.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    escalated = models.BooleanField()
    escalation_reason = models.CharField(max_length=32, blank=True)
    rating = models.CharField(max_length=10, blank=True, help_text="The customer's thumbs up/down, for CSAT.")
    business_id = _business_field()
    audience = _audience_field()
    outcome = models.CharField(
        max_length=12,
        choices=Outcome.choices,
        blank=True,
        help_text="What the conversations achieved (support.outcomes).",
    )
    conversations = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField(
        default=0, help_text="Claude cost of these conversations in micro-USD: the cost per outcome."
    )

    class Meta:
        db_table = "support_rollup_conversations"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "source",
                    "status",
                    "escalated",
                    "escalation_reason",
                    "rating",
                    "outcome",
                    "business_id",
                    "audience",
                ],
                name="uniq_rollup_conversation_key",
            ),
        ]
        # A window of days from an index on any MongoDB: the unique key's index is partial there (a type
        # check per field), which no range query may use.
        indexes = [models.Index(fields=["day"], name="rollup_conversation_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.source} {self.status}: {self.conversations}"


class DailyCloseRollup(models.Model):
    """Escalated conversations started on `day` and now closed, by how long escalation-to-close took."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    close_bucket = models.SmallIntegerField(
        help_text="Index of the duration bucket (upper bounds in support.rollups.CLOSE_BUCKET_BOUNDS_S)."
    )
    business_id = _business_field()
    audience = _audience_field()
    conversations = models.BigIntegerField(default=0)

    class Meta:
        db_table = "support_rollup_closes"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "close_bucket", "business_id", "audience"], name="uniq_rollup_close_key"
            )
        ]
        # A window of days from an index on any MongoDB: the unique key's index is partial there (a type
        # check per field), which no range query may use.
        indexes = [models.Index(fields=["day"], name="rollup_close_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} bucket {self.close_bucket}: {self.conversations}"


class UsageCounters(models.Model):
    """Turns, tokens and cost, and the share of them the widget reported itself: a usage rollup's counters."""

    conversations = models.BigIntegerField(default=0, help_text="Conversations with at least one turn on this model.")
    messages = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)
    # The part of the figures above that the widget reported itself (MessageOrigin.CLIENT): unverified.
    client_conversations = models.BigIntegerField(
        default=0, help_text="Conversations whose first widget-reported turn used this model."
    )
    client_messages = models.BigIntegerField(default=0)
    client_input_tokens = models.BigIntegerField(default=0)
    client_output_tokens = models.BigIntegerField(default=0)
    client_cache_read_tokens = models.BigIntegerField(default=0)
    client_cache_write_tokens = models.BigIntegerField(default=0)
    client_cost_micros = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class DailyUsageRollup(UsageCounters):
    """Turns, tokens and cost of the conversations started on `day`, per source and model."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    source = models.CharField(max_length=20, choices=Source.choices)
    model = models.CharField(max_length=100)
    business_id = _business_field()
    audience = _audience_field()

    class Meta:
        db_table = "support_rollup_usage"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "model", "business_id", "audience"], name="uniq_rollup_usage_key"
            ),
        ]
        # A window of days from an index on any MongoDB: the unique key's index is partial there (a type
        # check per field), which no range query may use.
        indexes = [models.Index(fields=["day"], name="rollup_usage_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.source} {self.model}: {self.cost_micros} micro-USD"


class DailyModelUsageRollup(UsageCounters):
    """DailyUsageRollup summed over sources, businesses and audiences: one row per day and model. Analytics of
    every venue read these, a few rows a day, instead of a row per day, source, model and venue."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    model = models.CharField(max_length=100)

    class Meta:
        db_table = "support_rollup_model_usage"
        constraints = [models.UniqueConstraint(fields=["day", "model"], name="uniq_rollup_model_usage_key")]
        # See DailyUsageRollup: a window of days needs an index of its own on MongoDB.
        indexes = [models.Index(fields=["day"], name="rollup_model_usage_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.model}: {self.cost_micros} micro-USD"


class DailyQuestionRollup(models.Model):
    """How many conversations started on `day` opened with each (normalised) question."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    question_key = models.CharField(max_length=255)
    business_id = _business_field()
    audience = _audience_field()
    conversations = models.BigIntegerField(default=0)

    class Meta:
        db_table = "support_rollup_questions"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "question_key", "business_id", "audience"], name="uniq_rollup_question_key"
            ),
        ]
        indexes = [
            # Each day's most asked questions (top-question candidates), then their exact window totals.
            models.Index(fields=["day", "-conversations"], name="rollup_question_day_top_idx"),
            models.Index(fields=["question_key", "day"], name="rollup_question_key_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.question_key[:40]}: {self.conversations}"


class DailySpend(models.Model):
    """Today's Claude budget (SUPPORT_DAILY_BUDGET_USD), one row per UTC day, changed only by conditional
    F() updates: a chat reserves its worst-case cost before calling Claude (refused if the reservation would
    pass the cap) and settles to the real cost afterwards, so parallel chats cannot overspend."""

    day = models.DateField(unique=True, help_text="The UTC day.")
    spent_micros = models.BigIntegerField(default=0, help_text="Settled cost of the chat proxy's Claude calls.")
    reserved_micros = models.BigIntegerField(
        default=0, help_text="Worst-case cost of the Claude calls under way (reserved, not yet settled)."
    )
    warned = models.BooleanField(default=False, help_text="The 80%-spent warning was logged for this day.")

    def __str__(self) -> str:
        return f"{self.day}: {self.spent_micros} spent, {self.reserved_micros} reserved"
