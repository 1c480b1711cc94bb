from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

MICROS_PER_USD = 1_000_000


class Source(models.TextChoices):
    WEB = "web", "Website"
    APP_OWNER = "app_owner", "App (business owner)"
    APP_DINER = "app_diner", "App (diner)"
    DASHBOARD = "dashboard", "Dashboard"


class Status(models.TextChoices):
    AUTO_RESOLVED = "auto_resolved", "Auto-resolved"
    NEEDS_REVIEW = "needs_review", "Needs review"
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    CLOSED = "closed", "Closed"


#: Statuses a human still has to act on: the review queue.
QUEUE_STATUSES = (Status.NEEDS_REVIEW, Status.OPEN, Status.IN_PROGRESS)


class Role(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class MessageOrigin(models.TextChoices):
    """Who wrote a turn, and so how far its text and usage are trusted."""

    PROXY = "proxy", "Chat proxy"  # support/bot/turn.py: Claude's usage as Claude reported it to us
    CLIENT = "client", "Reported by the widget"  # POST messages with a widget token: unverified
    STAFF = "staff", "Logged by staff"  # POST messages by a staff user or API token
    AGENT = "agent", "Staff reply"  # reserved: a person answering in the conversation


class EscalationReason(models.TextChoices):
    WIDGET_FLAG = "widget_flag", "Flagged by the widget"
    BOT_TOOL = "bot_tool", "Bot asked for a human"
    SUPPORT_EMAIL = "support_email", "Reply pointed to the support email"
    HUMAN_REQUESTED = "human_requested", "Customer asked for a human"
    CLAUDE_UNAVAILABLE = "claude_unavailable", "Claude unavailable"
    BUDGET = "budget", "Daily budget spent"
    NO_ANSWER = "no_answer", "Knowledge base had no answer"
    STAFF = "staff", "Flagged by staff"
    THUMBS_DOWN = "thumbs_down", "Customer gave a thumbs-down"


class Rating(models.TextChoices):
    """The customer's thumbs up / down on the widget; blank until they rate."""

    UP = "up", "Thumbs up"
    DOWN = "down", "Thumbs down"


class ModelPrice(models.Model):
    """What one Claude model costs from a moment on; a correction is a new row, not an edit."""

    model = models.CharField(max_length=100, help_text="Anthropic model id, e.g. claude-haiku-4-5.")
    input_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-USD per million input tokens ($1/MTok = 1000000)."
    )
    output_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-USD per million output tokens."
    )
    cache_write_5m_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)],
        help_text="Micro-USD per million tokens written to the 5-minute prompt cache.",
    )
    cache_write_1h_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-USD per million tokens written to the 1-hour prompt cache."
    )
    cache_read_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-USD per million tokens read from the prompt cache."
    )
    effective_from = models.DateTimeField(
        help_text="Messages logged at or after this moment (UTC) are priced with this row."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "support_model_prices"
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="uniq_price_model_effective_from"),
        ]
        indexes = [models.Index(fields=["model", "-effective_from"], name="price_model_eff_idx")]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from:%Y-%m-%d}"


class Conversation(models.Model):
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.WEB)
    page_url = models.URLField(max_length=2048, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    user_id = models.CharField(max_length=128, blank=True, help_text="The site's own id for the signed-in user.")
    business_id = models.CharField(max_length=128, blank=True, help_text="The site's own id for the business.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AUTO_RESOLVED)
    escalated = models.BooleanField(default=False)
    escalation_reason = models.CharField(max_length=32, choices=EscalationReason.choices, blank=True)
    escalation_detail = models.CharField(
        max_length=500, blank=True, help_text="Free text behind the reason, e.g. what the bot said it could not do."
    )
    summary = models.CharField(max_length=255, blank=True, help_text="The customer's first message, cut to 255.")
    question_key = models.CharField(
        max_length=255,
        blank=True,
        help_text="The first message normalised (lower case, no punctuation) to group top questions.",
    )
    message_count = models.PositiveIntegerField(default=0)
    turns_reserved = models.PositiveIntegerField(
        default=0,
        help_text="Turns the widget and the chat proxy claimed against SUPPORT_CHAT_MAX_TURNS, before storing "
        "them (one conditional update, so parallel requests cannot overshoot); message_count is what is stored.",
    )
    total_input_tokens = models.PositiveBigIntegerField(default=0)
    total_output_tokens = models.PositiveBigIntegerField(default=0)
    total_cache_read_tokens = models.PositiveBigIntegerField(default=0)
    total_cache_write_tokens = models.PositiveBigIntegerField(default=0)
    cost_micros = models.PositiveBigIntegerField(default=0, help_text="Total Claude cost in micro-USD.")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
        limit_choices_to={"is_staff": True},
    )
    notes = models.TextField(
        blank=True,
        help_text="Staff-only notes; never shown to the customer. A copy of the TicketNote timeline's texts, "
        "oldest first, kept by services.ticket_note_add for the API's `notes` field.",
    )
    contact_email = models.EmailField(blank=True, help_text="Where the customer asked to be answered.")
    rating = models.CharField(
        max_length=8,
        choices=Rating.choices,
        blank=True,
        help_text="The customer's latest thumbs up/down in the widget (a re-rate overwrites); feeds CSAT.",
    )
    rated_at = models.DateTimeField(null=True, blank=True, help_text="When the customer last rated (UTC).")
    rated_message = models.ForeignKey(
        "Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The assistant reply the customer rated, when the widget said which.",
    )
    token_hash = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of the widget's secret for this conversation."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the conversation was last flagged for human review (UTC)."
    )

    class Meta:
        db_table = "support_conversations"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="conv_created_idx"),
            models.Index(fields=["status", "-created_at"], name="conv_status_created_idx"),
            models.Index(fields=["escalated", "-created_at"], name="conv_escalated_created_idx"),
        ]

    def __str__(self) -> str:
        return self.summary or f"Conversation {self.pk}"

    @property
    def cost_usd(self) -> float:
        return self.cost_micros / MICROS_PER_USD


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField()
    origin = models.CharField(
        max_length=10,
        choices=MessageOrigin.choices,
        default=MessageOrigin.CLIENT,
        help_text="Who wrote the turn: the chat proxy, the widget (its usage is unverified), staff, or an agent. "
        "Widget turns are reported apart and never sent to Claude as its own replies.",
    )
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(
        default=0, help_text="Tokens written to the prompt cache (5-minute and 1-hour together)."
    )
    cache_write_1h_tokens = models.PositiveIntegerField(
        default=0, help_text="The part of cache_write_tokens written with the 1-hour TTL."
    )
    cost_micros = models.PositiveBigIntegerField(default=0, help_text="Claude cost of this turn in micro-USD.")
    price = models.ForeignKey(
        ModelPrice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
        help_text="The price row this turn was costed with.",
    )
    price_fallback = models.BooleanField(
        default=False, help_text="The model had no price, so the default model's price was used."
    )
    is_escalation = models.BooleanField(default=False)
    is_partial = models.BooleanField(default=False, help_text="The reply stream broke; this is what arrived.")
    is_truncated = models.BooleanField(
        default=False,
        help_text="Claude stopped at its max_tokens limit (SUPPORT_CLAUDE_MAX_TOKENS): the reply is cut short.",
    )
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "support_messages"
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="msg_conversation_created_idx"),
            # Today's spend (the daily budget) and analytics sum messages by time across conversations.
            models.Index(fields=["created_at"], name="msg_created_idx"),
            # The analytics drill-down to conversations with widget-reported turns.
            models.Index(fields=["origin", "created_at"], name="msg_origin_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"

    @property
    def cost_usd(self) -> float:
        return self.cost_micros / MICROS_PER_USD


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
    order = models.IntegerField(default=0, help_text="Lower first, in the prompt and when two answers tie.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "support_knowledge_articles"
        ordering = ["order", "title"]
        indexes = [models.Index(fields=["active", "order"], name="kb_active_order_idx")]

    def __str__(self) -> str:
        return self.title


class IdempotencyRecord(models.Model):
    """The stored answer to a request sent with an Idempotency-Key, replayed when it is retried."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the request body; a reused key with another body is refused."
    )
    response = models.JSONField(null=True, blank=True, help_text="Empty while the first request is running.")
    user_message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Chat: the customer's turn this key stored. A retry whose reply was never stored answers it "
        "again instead of storing the turn twice.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "support_idempotency"
        constraints = [
            models.UniqueConstraint(fields=["conversation", "key"], name="uniq_idempotency_conversation_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]  # idempotency_prune: no scan

    def __str__(self) -> str:
        return f"{self.key} on {self.conversation_id}"


class EventField(models.TextChoices):
    STATUS = "status", "Status"
    ASSIGNED_TO = "assigned_to", "Assigned to"
    NOTES = "notes", "Notes"
    ESCALATED = "escalated", "Escalated"
    ESCALATION_REASON = "escalation_reason", "Escalation reason"
    CONTACT_EMAIL = "contact_email", "Contact email"
    RATING = "rating", "Customer rating"
    ESCALATION_DETAIL = "escalation_detail", "The bot's note (not verified)"


class AppendOnlyModel(models.Model):
    """A history row: written once, never changed or deleted (a correction is a new row)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValueError(f"{str(self._meta.verbose_name_plural).capitalize()} are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError(f"{str(self._meta.verbose_name_plural).capitalize()} are append-only.")


class TicketEvent(AppendOnlyModel):
    """Append-only history of a ticket: who changed which field from what to what."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ticket_events",
        help_text="Empty when the widget or the bot made the change.",
    )
    actor_label = models.CharField(max_length=150, help_text="Username, or 'widget' / 'bot' / 'system'.")
    field = models.CharField(max_length=32, choices=EventField.choices)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "support_ticket_events"
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="event_conversation_created_idx")]

    def __str__(self) -> str:
        return f"{self.actor_label} changed {self.field}"


class TicketNote(AppendOnlyModel):
    """One staff note on a ticket. Append-only: a correction is a new note, so the timeline is the record."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="ticket_notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ticket_notes",
        help_text="The staff user who wrote it; empty once that user is deleted (author_label remains).",
    )
    author_label = models.CharField(max_length=150, help_text="The author's username when the note was written.")
    text = models.TextField(help_text="The note, as written; staff only, never shown to the customer.")
    created_at = models.DateTimeField(default=timezone.now, help_text="When the note was added (UTC).")

    class Meta:
        db_table = "support_ticket_notes"
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="note_conversation_created_idx")]

    def __str__(self) -> str:
        return f"{self.author_label}: {self.text[:60]}"


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
    conversations = models.BigIntegerField(default=0)

    class Meta:
        db_table = "support_rollup_conversations"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "status", "escalated", "escalation_reason", "rating"],
                name="uniq_rollup_conversation_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.source} {self.status}: {self.conversations}"


class DailyCloseRollup(models.Model):
    """Escalated conversations started on `day` and now closed, by how long escalation-to-close took."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    close_bucket = models.SmallIntegerField(
        help_text="Index of the duration bucket (upper bounds in support.rollups.CLOSE_BUCKET_BOUNDS_S)."
    )
    conversations = models.BigIntegerField(default=0)

    class Meta:
        db_table = "support_rollup_closes"
        constraints = [models.UniqueConstraint(fields=["day", "close_bucket"], name="uniq_rollup_close_key")]

    def __str__(self) -> str:
        return f"{self.day} bucket {self.close_bucket}: {self.conversations}"


class DailyUsageRollup(models.Model):
    """Turns, tokens and cost of the conversations started on `day`, per source and model."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    source = models.CharField(max_length=20, choices=Source.choices)
    model = models.CharField(max_length=100)
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
        db_table = "support_rollup_usage"
        constraints = [
            models.UniqueConstraint(fields=["day", "source", "model"], name="uniq_rollup_usage_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.source} {self.model}: {self.cost_micros} micro-USD"


class DailyQuestionRollup(models.Model):
    """How many conversations started on `day` opened with each (normalised) question."""

    day = models.DateField(help_text="The UTC day the conversations started.")
    question_key = models.CharField(max_length=255)
    conversations = models.BigIntegerField(default=0)

    class Meta:
        db_table = "support_rollup_questions"
        constraints = [
            models.UniqueConstraint(fields=["day", "question_key"], name="uniq_rollup_question_key"),
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
