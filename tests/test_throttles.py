"""Widget rate limits: per client IP and per conversation, on a cache every worker shares."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.core.cache import caches
from django.test import override_settings
from rest_framework.test import APIClient

from support.models import Conversation, Message

pytestmark = pytest.mark.django_db
BASE = "/api/support"


@override_settings(SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE="2/hour")
def test_conversation_creation_is_limited_per_client_ip(anon: APIClient) -> None:
    for _ in range(2):
        assert anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.0.0.1").status_code == 201
    response = anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["reason"] == "conversation_create"
    assert anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.0.0.2").status_code == 201
    assert Conversation.objects.count() == 3


@override_settings(SUPPORT_THROTTLE_CONVERSATION_RATE="3/min", SUPPORT_CLIENT_LOGGING="seed")
def test_message_logging_is_limited_per_conversation(make_conversation: Any, widget: Any) -> None:
    first, first_token = make_conversation()
    second, second_token = make_conversation()
    body = {"role": "user", "content": "hi"}
    for _ in range(3):
        response = widget(first_token).post(f"{BASE}/conversations/{first.pk}/messages", body, format="json")
        assert response.status_code == 201
    response = widget(first_token).post(f"{BASE}/conversations/{first.pk}/messages", body, format="json")
    assert response.status_code == 429
    assert response.json()["reason"] == "conversation"
    assert Message.objects.filter(conversation=first).count() == 3
    response = widget(second_token).post(f"{BASE}/conversations/{second.pk}/messages", body, format="json")
    assert response.status_code == 201


@override_settings(SUPPORT_THROTTLE_CONVERSATION_RATE="1/min")
def test_staff_are_not_throttled(make_conversation: Any, staff: APIClient) -> None:
    conversation, _ = make_conversation()
    for _ in range(3):
        response = staff.post(
            f"{BASE}/conversations/{conversation.pk}/messages", {"role": "user", "content": "x"}, format="json"
        )
        assert response.status_code == 201


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set by .ci/run)")
def test_throttle_counters_live_in_redis_when_configured(anon: APIClient) -> None:
    assert "RedisCache" in type(caches["default"]).__name__
    anon.post(f"{BASE}/conversations", {}, format="json", REMOTE_ADDR="10.9.9.9")
    client = caches["default"]._cache.get_client()
    keys = [k.decode() for k in client.keys("*throttle_conversation_create_10.9.9.9*")]
    assert keys, "the throttle history should be stored in Redis"


@override_settings(
    SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE="1/hour",
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    },
)
def test_an_unreachable_cache_lets_traffic_through_with_a_warning(
    anon: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(2):
        assert anon.post(f"{BASE}/conversations", {}, format="json").status_code == 201
    assert "cache unavailable" in caplog.text
    assert Conversation.objects.count() == 2
