"""manage.py webhooks add / list (issue 12): the signing secret is printed once, http is refused."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from standardwebhooks.webhooks import Webhook

from support.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("webhooks", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_add_stores_the_endpoint_and_prints_its_signing_secret_once() -> None:
    out = run(
        "add", "https://hooks.example.com/rezvo", "--event", "conversation.escalated", "--event", "budget.threshold"
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.url == "https://hooks.example.com/rezvo"
    assert endpoint.events == ["budget.threshold", "conversation.escalated"]
    assert endpoint.is_active
    assert out.count(endpoint.secret) == 1
    assert endpoint.secret.startswith("whsec_")
    Webhook(endpoint.secret)  # a secret the standardwebhooks package accepts

    listing = run("list")
    assert "https://hooks.example.com/rezvo" in listing and "conversation.escalated" in listing
    assert endpoint.secret not in listing and "whsec_" not in listing


def test_each_endpoint_gets_its_own_secret() -> None:
    run("add", "https://a.example.com/", "--event", "conversation.closed")
    run("add", "https://b.example.com/", "--event", "conversation.closed")
    assert len(set(WebhookEndpoint.objects.values_list("secret", flat=True))) == 2


def test_plain_http_is_refused_with_a_clear_error() -> None:
    with pytest.raises(CommandError, match="SUPPORT_WEBHOOKS_ALLOW_HTTP"):
        run("add", "http://hooks.example.com/", "--event", "conversation.closed")
    assert not WebhookEndpoint.objects.exists()


@override_settings(SUPPORT_WEBHOOKS_ALLOW_HTTP=True)
def test_plain_http_is_accepted_when_allowed() -> None:
    run("add", "http://127.0.0.1:9000/hook", "--event", "conversation.closed")
    assert WebhookEndpoint.objects.get().url == "http://127.0.0.1:9000/hook"


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(CommandError, match=r"conversation\.exploded"):
        run("add", "https://hooks.example.com/", "--event", "conversation.exploded")
    assert not WebhookEndpoint.objects.exists()


def test_list_says_how_to_add_one_when_there_are_none() -> None:
    assert "webhooks add" in run("list")
