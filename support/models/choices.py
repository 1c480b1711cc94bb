"""The choices every table shares: sources, statuses, roles, reasons, ratings, event fields."""

from __future__ import annotations

from django.db import models

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
    AGENT = "agent", "Agent"  # a staff member's reply in the conversation (Message.author wrote it)


class HandledBy(models.TextChoices):
    """Who answers the customer: the bot, or a person (then the bot stays silent)."""

    BOT = "bot", "The bot"
    HUMAN = "human", "A person"


class MessageOrigin(models.TextChoices):
    """Who wrote a turn, and so how far its text and usage are trusted."""

    PROXY = "proxy", "Chat proxy"  # support/bot/turn.py: Claude's usage as Claude reported it to us
    CLIENT = "client", "Reported by the widget"  # POST messages with a widget token: unverified
    STAFF = "staff", "Logged by staff"  # POST messages by a staff user or API token
    AGENT = "agent", "Staff reply"  # a person answering in the conversation (services.conversation_reply)


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


#: Escalations after which the customer waits for a person: the conversation passes to people
#: (handled_by=human) and the bot stops answering until staff hand it back.
HANDOFF_REASONS = (
    EscalationReason.WIDGET_FLAG,
    EscalationReason.BOT_TOOL,
    EscalationReason.SUPPORT_EMAIL,
    EscalationReason.HUMAN_REQUESTED,
)


class Rating(models.TextChoices):
    """The customer's thumbs up / down on the widget; blank until they rate."""

    UP = "up", "Thumbs up"
    DOWN = "down", "Thumbs down"


class EventField(models.TextChoices):
    STATUS = "status", "Status"
    ASSIGNED_TO = "assigned_to", "Assigned to"
    NOTES = "notes", "Notes"
    ESCALATED = "escalated", "Escalated"
    ESCALATION_REASON = "escalation_reason", "Escalation reason"
    CONTACT_EMAIL = "contact_email", "Contact email"
    RATING = "rating", "Customer rating"
    ESCALATION_DETAIL = "escalation_detail", "The bot's note (not verified)"
    HANDLED_BY = "handled_by", "Handled by"
    EMAIL_SENT = "email_sent", "Email sent"


class ErasureKind(models.TextChoices):
    """Why conversations were deleted (retention and erasure, issue 15): each deletion writes one ErasureRecord."""

    ERASURE = "erasure", "Erasure request (manage.py erase)"
    PURGE = "purge", "Retention purge (manage.py purge or the periodic job)"
    ADMIN = "admin", "Deleted in the admin"


class Audience(models.TextChoices):
    """Who the customer is to the venue; blank when the embedding page did not say."""

    DINER = "diner", "Diner"
    OWNER = "owner", "Business owner"


class Outcome(models.TextChoices):
    """What a conversation really achieved; support.outcomes.outcome_of decides it."""

    CONFIRMED = "confirmed", "Confirmed resolved (customer said so)"
    ASSUMED = "assumed", "Assumed resolved (no return within the window)"
    ESCALATED = "escalated", "Escalated to a person"
    NEGATIVE = "negative", "Customer said it did not help"
    ABANDONED = "abandoned", "Abandoned (no substantive question)"
    OPEN = "open", "Open (resolution window not over)"


class BotCheckEscalation(models.TextChoices):
    """What a bot check expects of escalation (support/botcheck.py)."""

    ANY = "", "Either"
    MUST = "must", "Must escalate"
    MUST_NOT = "must_not", "Must not escalate"


class BotCheckResponder(models.TextChoices):
    """Who answered a bot-check run: Claude as configured, or the offline knowledge-base responder."""

    CLAUDE = "claude", "Claude"
    OFFLINE = "offline", "Offline responder (knowledge base)"


class BotCheckRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed to run"
