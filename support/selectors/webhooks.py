"""Reads of webhook endpoints and deliveries."""

from __future__ import annotations

from django.db.models import QuerySet

from support.models import WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("created_at", "pk")


def webhook_delivery_list(*, event: str | None = None) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.select_related("endpoint").order_by("created_at", "pk")
    return deliveries if event is None else deliveries.filter(event=event)
