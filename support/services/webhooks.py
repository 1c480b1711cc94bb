"""Webhook endpoints and deliveries: create, sign (Standard Webhooks), attempt, back off, give up.

Publishing only enqueues (support/services/notifications.py); the task queue creates one delivery per
subscribed endpoint and attempts it here, off the request path, with SUPPORT_WEBHOOKS_TIMEOUT_S. A failure
is tried again after 30 s, 1 min, 2 min, ... (the periodic task in support/tasks.py picks up what is due)
until SUPPORT_WEBHOOKS_RETRY_HOURS after the event, then the delivery is marked failed. Every attempt is a
WebhookAttempt row, visible in the admin. The webhook-id stays the same across retries, so a receiver that
saw an attempt it answered too slowly can drop the repeat.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from support.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

#: The first retry waits this long; each next one twice as long (capped at BACKOFF_MAX).
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
#: Of a receiver's answer, this much is kept for the admin.
EXCERPT_CHARS = 500
#: A delivery being attempted is not picked up again by the periodic retry for this long.
ATTEMPT_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    body: str
    error: str


#: How an attempt sends: (url, body, headers, timeout) -> PostResult. Tests may pass their own.
Poster = Callable[[str, bytes, dict[str, str], float], PostResult]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's answer (3xx, a failure), never followed: the URL staff entered is the one."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            return PostResult(response.status, response.read(EXCERPT_CHARS).decode("utf-8", "replace"), "")
    except urllib.error.HTTPError as exc:
        return PostResult(exc.code, exc.read(EXCERPT_CHARS).decode("utf-8", "replace"), "")
    except (OSError, ValueError) as exc:  # refused, reset, DNS, TLS, timeout
        return PostResult(None, "", f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS])


def webhook_endpoint_create(*, url: str, events: list[str], is_active: bool = True) -> WebhookEndpoint:
    """A new endpoint with a fresh signing secret. Raises ValidationError for an http URL or an unknown event."""
    endpoint = WebhookEndpoint(url=url, events=sorted(set(events)), is_active=is_active)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def webhook_deliveries_create(*, event: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """One pending delivery per active endpoint subscribed to `event` (endpoints are few: filtered here)."""
    now = timezone.now()
    endpoints = [ep for ep in WebhookEndpoint.objects.filter(is_active=True) if event in (ep.events or [])]
    return [
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=event,
            payload=payload,
            webhook_id=f"msg_{uuid.uuid4().hex}",
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint in endpoints
    ]


def webhook_headers(*, secret: str, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for `body`, signed with the endpoint's secret at `at`."""
    return {
        "content-type": "application/json",
        "user-agent": "RezvoSupport-Webhooks/1",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
    }


def backoff_after(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (1-based): 30 s, 1 min, 2 min, ... capped at 6 h."""
    return min(BACKOFF_FIRST * 2 ** max(attempt - 1, 0), BACKOFF_MAX)


def webhook_delivery_attempt(*, delivery_id: Any, now: datetime | None = None, post: Poster | None = None) -> bool:
    """Try one pending delivery once (if it is due and not taken); True when the receiver answered 2xx.

    The claim is a compare-and-set on next_attempt_at, so the first attempt and the periodic retry never
    send the same delivery twice at once.
    """
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING or delivery.next_attempt_at is None:
        return False
    if delivery.next_attempt_at > now:
        return False
    claimed = WebhookDelivery.objects.filter(pk=delivery.pk, next_attempt_at=delivery.next_attempt_at).update(
        next_attempt_at=now + ATTEMPT_LEASE
    )
    if not claimed:
        return False
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    headers = webhook_headers(secret=delivery.endpoint.secret, webhook_id=delivery.webhook_id, body=body, at=now)
    started = time.monotonic()
    result = (post or http_post)(delivery.endpoint.url, body.encode(), headers, settings.SUPPORT_WEBHOOKS_TIMEOUT_S)
    _attempt_record(delivery=delivery, result=result, now=now, duration=time.monotonic() - started)
    return delivery.status == DeliveryStatus.DELIVERED


def _attempt_record(*, delivery: WebhookDelivery, result: PostResult, now: datetime, duration: float) -> None:
    number = delivery.attempt_count + 1
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        attempted_at=now,
        duration_ms=int(duration * 1000),
        status_code=result.status_code,
        response_excerpt=result.body,
        error=result.error,
    )
    ok = result.status_code is not None and 200 <= result.status_code < 300
    next_at = None if ok else now + backoff_after(number)
    give_up = next_at is not None and next_at > delivery.created_at + timedelta(
        hours=settings.SUPPORT_WEBHOOKS_RETRY_HOURS
    )
    status = DeliveryStatus.DELIVERED if ok else DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING
    fields = {
        "attempt_count": number,
        "status_code": result.status_code,
        "response_excerpt": result.body,
        "error": result.error,
        "status": status,
        "next_attempt_at": None if ok or give_up else next_at,
        "delivered_at": now if ok else None,
    }
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)
    log = logger.info if ok else logger.warning
    log(
        "webhook %s %s to %s: attempt %d -> %s",
        delivery.webhook_id,
        delivery.event,
        delivery.endpoint.url,
        number,
        result.status_code or result.error,
    )


def webhook_deliveries_due(*, now: datetime | None = None, limit: int = 100) -> list[Any]:
    """The pending deliveries whose next attempt is due (ids, oldest first)."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(Q(status=DeliveryStatus.PENDING) & Q(next_attempt_at__lte=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
