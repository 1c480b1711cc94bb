"""A conversation (the ticket) and its turns."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# The primary key class SupportConfig.default_auto_field names, imported here so the type checker has it
# before it types the `_id` of every foreign key to these tables.
from support.fields import AutoPrimaryKey as AutoPrimaryKey
from support.models.choices import (
    MICROS_PER_USD,
    QUEUE_STATUSES,
    Audience,
    EscalationReason,
    HandledBy,
    MessageOrigin,
    Outcome,
    Rating,
    Role,
    Source,
    Status,
)
from support.models.prices import ModelPrice


class Conversation(models.Model):
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.WEB)
    page_url = models.URLField(max_length=2048, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    user_id = models.CharField(max_length=128, blank=True, help_text="The site's own id for the signed-in user.")
    business_id = models.CharField(max_length=128, blank=True, help_text="The site's own id for the business.")
    audience = models.CharField(
        max_length=8,
        choices=Audience.choices,
        blank=True,
        help_text="Diner or business owner, as the embedding page said; blank when it did not.",
    )
    identity_verified = models.BooleanField(
        default=False,
        help_text="The page sent a valid user_hash (HMAC-SHA256 of user_id with SUPPORT_IDENTITY_SECRET): "
        "user_id and the identity sent with it come from the embedding site's server. False: claims only.",
    )
    contact_name = models.CharField(
        max_length=200, blank=True, help_text="The customer's name as the embedding page sent it."
    )
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
    handled_by = models.CharField(
        max_length=10,
        choices=HandledBy.choices,
        default=HandledBy.BOT,
        help_text="Who answers the customer: the bot, or a person (then the chat proxy stores the customer's "
        "turns and never calls Claude).",
    )
    customer_last_seen_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The widget's last poll or turn (UTC), written at most every 30 s; none for 2 minutes: the "
        "customer has left the widget.",
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
    first_response_due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a person should first reply to the latest escalation: SUPPORT_FIRST_RESPONSE_MINUTES of "
        "business hours (SUPPORT_BUSINESS_HOURS) after escalated_at. Empty: never escalated.",
    )
    first_human_response_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a person first replied after the latest escalation (UTC); a new escalation clears it.",
    )
    # --- Outcome (support/outcomes.py decides it from the fields below and the ones above) ---
    outcome = models.CharField(
        max_length=12,
        choices=Outcome.choices,
        default=Outcome.ABANDONED,
        help_text="What the conversation really achieved (support.outcomes): recomputed on every change and "
        "settled from open to assumed by a periodic job once SUPPORT_RESOLUTION_WINDOW_HOURS pass.",
    )
    substantive_question = models.BooleanField(
        default=False, help_text="The customer asked at least one substantive question (support.outcomes)."
    )
    substantive_answer = models.BooleanField(
        default=False, help_text="The bot gave at least one substantive answer (support.outcomes)."
    )
    last_turn_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the latest turn was stored (UTC): the resolution window runs from here, so a customer "
        "coming back inside it reopens an assumed resolution.",
    )
    rollup_marks = models.JSONField(
        default=list,
        blank=True,
        help_text="What the usage rollups have counted this conversation for already (model:<name>, client, "
        "ungrounded), so a fold of new turns counts it once per model without reading its older turns.",
    )
    # Not a column: the turns a read loaded beside the conversation (selectors.conversation_messages_attach).
    loaded_messages: list[Message]

    class Meta:
        db_table = "support_conversations"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="conv_created_idx"),
            models.Index(fields=["status", "-created_at"], name="conv_status_created_idx"),
            models.Index(fields=["escalated", "-created_at"], name="conv_escalated_created_idx"),
            # The queue: waiting tickets, soonest first-response due time first.
            models.Index(fields=["status", "first_response_due_at"], name="conv_status_due_idx"),
            # A person's conversations: a verified customer's history (ticket page, widget), and erasure and
            # export (manage.py erase / export_conversations) by the user_id prefix.
            models.Index(fields=["user_id", "identity_verified", "-created_at"], name="conv_user_verified_idx"),
            # A venue's tickets (the business filter, and staff limited to some businesses).
            models.Index(fields=["business_id", "-created_at"], name="conv_business_created_idx"),
            # The periodic settle job: open conversations whose resolution window is over.
            models.Index(fields=["outcome", "last_turn_at"], name="conv_outcome_turn_idx"),
        ]

    def __str__(self) -> str:
        return self.summary or f"Conversation {self.pk}"

    @property
    def cost_usd(self) -> float:
        return self.cost_micros / MICROS_PER_USD

    @property
    def first_response_overdue(self) -> bool:
        """Waiting in the queue past its first-response due time with no reply from a person."""
        due = self.first_response_due_at
        return (
            due is not None
            and self.first_human_response_at is None
            and self.status in QUEUE_STATUSES
            and due < timezone.now()
        )


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
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="support_replies",
        help_text="The staff user who wrote an agent turn; empty for every other turn.",
    )
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    # Citations (issue 14): what the reply is grounded in.
    cited_article_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="Primary keys (as strings) of the knowledge-base articles the reply cited, in citation order; "
        "the offline responder cites the article it answered from.",
    )
    is_ungrounded = models.BooleanField(
        default=False,
        help_text="Claude answered a product question without citing any knowledge-base article.",
    )
    rollup_pending = models.BooleanField(
        default=False,
        help_text="Stored but not yet added to the usage and grounding rollups: the fold (rollups_fold, on the "
        "task queue) adds it within seconds, off the request path.",
    )
    rollup_state = models.JSONField(
        null=True,
        blank=True,
        help_text="While rollup_pending: the conversation's state row (DailyConversationRollup) its cost was "
        "counted in when it was stored, for the fold to add the cost to.",
    )
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
            # The knowledge-gaps page and the analytics drill-down to ungrounded replies.
            models.Index(fields=["is_ungrounded", "created_at"], name="msg_ungrounded_created_idx"),
            # The rollup fold: the turns not yet in the usage rollups, oldest first.
            models.Index(fields=["rollup_pending"], name="msg_rollup_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"

    @property
    def cost_usd(self) -> float:
        return self.cost_micros / MICROS_PER_USD
