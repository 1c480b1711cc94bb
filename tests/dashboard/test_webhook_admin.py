"""The webhook admin (issue 12): endpoints are added there (https only); deliveries and every attempt are
visible and read-only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from support import services
from support.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss_client(django_user_model: Any) -> Client:
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "correct-horse-battery")
    client = Client()
    client.force_login(boss)
    return client


def test_an_endpoint_added_in_the_admin_gets_a_secret_and_refuses_plain_http(boss_client: Client) -> None:
    add = reverse("admin:support_webhookendpoint_add")
    form = {"url": "http://hooks.example.com/", "events": ["conversation.escalated"], "is_active": "on"}
    response = boss_client.post(add, form)
    assert response.status_code == 200 and "must use https" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
    response = boss_client.post(add, form | {"url": "https://hooks.example.com/"})
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["conversation.escalated"] and endpoint.secret.startswith("whsec_")
    page = boss_client.get(reverse("admin:support_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret in page


def test_a_delivery_shows_each_attempt_and_cannot_be_changed(boss_client: Client) -> None:
    endpoint = services.webhook_endpoint_create(url="https://hooks.example.com/", events=["budget.threshold"])
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event="budget.threshold", payload={"type": "budget.threshold"}, webhook_id="msg_1"
    )
    for number, status in ((1, 500), (2, 200)):
        WebhookAttempt.objects.create(
            delivery=delivery, number=number, attempted_at=timezone.now(), status_code=status, response_excerpt="x"
        )
    listing = boss_client.get(reverse("admin:support_webhookdelivery_changelist"))
    assert listing.status_code == 200 and "budget.threshold" in listing.content.decode()
    change = reverse("admin:support_webhookdelivery_change", args=[delivery.pk])
    page = boss_client.get(change)
    assert page.status_code == 200
    attempts = page.context["inline_admin_formsets"][0]
    assert len(list(attempts)) == 2
    assert boss_client.post(change, {"event": "conversation.closed"}).status_code == 403
    assert boss_client.get(reverse("admin:support_webhookdelivery_add")).status_code == 403
