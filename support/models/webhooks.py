"""Webhook receivers and the deliveries made to them (each attempt logged), for the admin and the task queue."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

#: The events a receiver can subscribe to (docs: README "Webhooks").
WEBHOOK_EVENTS: tuple[str, ...] = (
    "conversation.escalated",
    "conversation.assigned",
    "conversation.replied",
    "conversation.customer_replied",
    "conversation.closed",
    "budget.threshold",
)

SECRET_PREFIX = "whsec_"


def webhook_secret_new() -> str:
    """A Standard Webhooks signing secret: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_url_validate(url: str) -> None:
    """https only; plain http only with SUPPORT_WEBHOOKS_ALLOW_HTTP=true (local relays, tests)."""
    parts = urlsplit(url)
    if not parts.netloc or parts.scheme not in ("https", "http"):
        raise ValidationError(f"{url!r} is not an http(s) URL.", code="not_http")
    if parts.scheme == "http" and not settings.SUPPORT_WEBHOOKS_ALLOW_HTTP:
        raise ValidationError(
            "Webhook URLs must use https (plain http only with SUPPORT_WEBHOOKS_ALLOW_HTTP=true).", code="insecure"
        )


def webhook_events_validate(events: object) -> None:
    if not isinstance(events, list) or not events:
        raise ValidationError("Choose at least one event.", code="no_events")
    unknown = [event for event in events if event not in WEBHOOK_EVENTS]
    if unknown:
        raise ValidationError(
            f"Unknown event(s) {', '.join(map(str, unknown))}; known: {', '.join(WEBHOOK_EVENTS)}.",
            code="unknown_event",
        )


class WebhookEndpoint(models.Model):
    """A receiver of signed event notifications (Standard Webhooks)."""

    url = models.URLField(max_length=500, validators=[webhook_url_validate], help_text="https only.")
    events = models.JSONField(
        default=list, validators=[webhook_events_validate], help_text=f"Any of: {', '.join(WEBHOOK_EVENTS)}."
    )
    secret = models.CharField(
        max_length=100, default=webhook_secret_new, help_text="The signing secret (whsec_...) the receiver verifies."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "support_webhook_endpoints"
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.url

    def save(self, *args: object, **kwargs: object) -> None:
        # Validated on every save, not only in forms: a command or a shell must not store an http URL either.
        webhook_url_validate(self.url)
        webhook_events_validate(self.events)
        super().save(*args, **kwargs)  # type: ignore[arg-type]  # Model.save's keyword-only signature


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (will be tried)"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retries exhausted)"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the payload, its webhook-id (the same on every retry) and where it stands."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField(help_text="The JSON body, as signed.")
    webhook_id = models.CharField(
        max_length=64, unique=True, help_text="The webhook-id header; receivers dedupe on it."
    )
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True, help_text="Of the last attempt.")
    response_excerpt = models.TextField(blank=True, help_text="The start of the last response body.")
    error = models.TextField(blank=True, help_text="The last attempt's network error, if any.")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Empty once delivered or given up.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "support_webhook_deliveries"
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.event} ({self.webhook_id})"


class WebhookAttempt(models.Model):
    """One try of a delivery: what the receiver answered, or why it could not."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "support_webhook_attempts"
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}"
