"""Webhooks (issue 12): Standard Webhooks signatures, retries with backoff, each attempt logged, and a
receiver that is dead or hangs never slows a request."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from support import services, tasks
from support.models import (
    WEBHOOK_EVENTS,
    Conversation,
    DeliveryStatus,
    EscalationReason,
    Status,
    WebhookAttempt,
    WebhookDelivery,
)
from support.services import webhooks
from tests.fakes.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_allow_http")]


@pytest.fixture
def _allow_http() -> Any:
    with override_settings(SUPPORT_WEBHOOKS_ALLOW_HTTP=True):
        yield


@pytest.fixture
def conversation(make_conversation: Callable[..., tuple[Conversation, str]]) -> Conversation:
    return make_conversation()[0]


def _retry_due(now: Any) -> int:
    """What the periodic task does each minute, at `now`."""
    due = webhooks.webhook_deliveries_due(now=now)
    for delivery_id in due:
        webhooks.webhook_delivery_attempt(delivery_id=delivery_id, now=now)
    return len(due)


def test_a_receiver_gets_each_event_once_after_three_500s(
    conversation: Conversation, staff_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver(script=[500] * 9) as receiver:
        endpoint = services.webhook_endpoint_create(url=receiver.url, events=list(WEBHOOK_EVENTS))
        receiver.secret = endpoint.secret
        with django_capture_on_commit_callbacks(execute=True):  # the queue runs inline in tests: first attempts
            services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)
            services.conversation_update(
                conversation=conversation, actor=staff_user, changes={"assigned_to": staff_user}
            )
            services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": Status.CLOSED})
        now = timezone.now()
        for retry in range(1, 4):
            assert _retry_due(now) == 0, "nothing is retried before its backoff runs out"
            now += webhooks.backoff_after(retry)
            assert _retry_due(now) == 3
        assert _retry_due(now + timedelta(days=2)) == 0, "delivered: never sent again"

    assert all(item.verified for item in receiver.received), "every request carries a valid signature"
    assert len(receiver.received) == 12
    ok = receiver.answered_ok()
    assert sorted(item.event for item in ok) == sorted(
        ["conversation.escalated", "conversation.assigned", "conversation.closed"]
    )
    by_id: dict[str, set[int]] = {}
    for item in receiver.received:
        by_id.setdefault(item.webhook_id, set()).add(item.status)
    assert len(by_id) == 3 and all(statuses == {500, 200} for statuses in by_id.values()), "retries keep the id"
    for delivery in WebhookDelivery.objects.all():
        assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempt_count == 4
        assert delivery.delivered_at is not None and delivery.next_attempt_at is None
        attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
        assert [a.status_code for a in attempts] == [500, 500, 500, 200]
        assert [a.number for a in attempts] == [1, 2, 3, 4]


def test_a_delivery_is_dropped_after_the_retry_window_with_every_attempt_logged(
    conversation: Conversation, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver(script=[503] * 100) as receiver:  # no secret: the clock runs far from the real one
        services.webhook_endpoint_create(url=receiver.url, events=["conversation.escalated"])
        with django_capture_on_commit_callbacks(execute=True):
            services.notification_publish(event="conversation.escalated", conversation=conversation)
        [delivery] = WebhookDelivery.objects.all()
        now = delivery.created_at
        while _retry_due(now) or now < delivery.created_at + timedelta(hours=30):
            now += timedelta(minutes=30)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert delivery.attempt_count == WebhookAttempt.objects.filter(delivery=delivery).count() == len(receiver.received)
    assert 10 <= delivery.attempt_count <= 20
    last = WebhookAttempt.objects.filter(delivery=delivery).order_by("-number").first()
    assert last is not None and last.attempted_at <= delivery.created_at + timedelta(hours=24)
    assert delivery.status_code == 503 and delivery.response_excerpt == "nope"


def test_a_dead_receiver_is_logged_as_an_error_and_retried(
    conversation: Conversation, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver() as receiver:
        url = receiver.url  # the server stops at the end of the block: nothing listens there any more
    services.webhook_endpoint_create(url=url, events=["conversation.closed"])
    with django_capture_on_commit_callbacks(execute=True):
        services.notification_publish(event="conversation.closed", conversation=conversation)
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == DeliveryStatus.PENDING and delivery.status_code is None
    assert "Connection" in delivery.error or "refused" in delivery.error.lower()
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > timezone.now()


def test_only_active_endpoints_subscribed_to_the_event_get_it(
    conversation: Conversation, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver() as receiver:
        services.webhook_endpoint_create(url=receiver.url, events=["conversation.closed"])
        services.webhook_endpoint_create(url=receiver.url, events=["conversation.escalated"], is_active=False)
        with django_capture_on_commit_callbacks(execute=True):
            services.notification_publish(event="conversation.escalated", conversation=conversation)
    assert receiver.received == [] and not WebhookDelivery.objects.exists()


@override_settings(SUPPORT_WEBHOOKS_ALLOW_HTTP=False)
def test_plain_http_is_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="SUPPORT_WEBHOOKS_ALLOW_HTTP"):
        services.webhook_endpoint_create(url="http://example.com/hook", events=["conversation.closed"])
    endpoint = services.webhook_endpoint_create(url="https://example.com/hook", events=["conversation.closed"])
    assert endpoint.secret.startswith("whsec_")
    endpoint.url = "http://example.com/hook"
    with pytest.raises(ValidationError):
        endpoint.save()


def test_unknown_events_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"conversation\.exploded"):
        services.webhook_endpoint_create(url="https://example.com/hook", events=["conversation.exploded"])


def test_a_hanging_receiver_adds_nothing_to_request_latency(
    conversation: Conversation, staff: APIClient, task_queue: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver(delay=10) as receiver:
        endpoint = services.webhook_endpoint_create(url=receiver.url, events=list(WEBHOOK_EVENTS))
        receiver.secret = endpoint.secret
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            response = staff.patch(f"/api/support/conversations/{conversation.pk}", {"escalated": True}, format="json")
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.content
        assert elapsed < 1.0, f"the request waited {elapsed:.2f}s"
        assert task_queue.pending_count() == 1, "publishing only queued the work"
        assert receiver.received == []

        # The worker's side: one attempt gives up after SUPPORT_WEBHOOKS_TIMEOUT_S and is retried later.
        with override_settings(SUPPORT_WEBHOOKS_TIMEOUT_S=0.3):
            started = time.monotonic()
            # The consumer's work, without its connection handling (it would close the test's database).
            fanout = task_queue.dequeue()
            assert fanout.name.endswith("notification_fanout")
            tasks.notification_fanout.call_local(*fanout.args)  # queues one delivery
            delivery_task = task_queue.dequeue()
            tasks.webhook_deliver.call_local(*delivery_task.args)
            assert time.monotonic() - started < 3
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and "timed out" in delivery.error
