"""Prices are never negative: the model refuses them, the admin shows the error, and pricing skips a bad row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from support import services
from support.models import Message, ModelPrice, Role
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db

MODEL = "claude-haiku-4-5"
PRICE_FIELDS = (
    "input_per_mtok_micros",
    "output_per_mtok_micros",
    "cache_write_5m_per_mtok_micros",
    "cache_write_1h_per_mtok_micros",
    "cache_read_per_mtok_micros",
)


@pytest.fixture
def admin_browser(django_user_model: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "x-long-password-1"))
    return client


@pytest.fixture
def claude(settings: Any) -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        settings.ANTHROPIC_API_KEY = "sk-ant-test-secret-key-0123456789"
        settings.ANTHROPIC_BASE_URL = fake.base_url
        settings.SUPPORT_CLAUDE_MODEL = MODEL
        yield fake


def negative_row(**overrides: int) -> ModelPrice:
    """A row as an old admin let through: written without validation, effective from now on."""
    values = dict.fromkeys(PRICE_FIELDS, 1_000_000) | overrides
    return ModelPrice.objects.create(model=MODEL, effective_from=timezone.now() - timedelta(seconds=5), **values)


@pytest.mark.parametrize("field", PRICE_FIELDS)
def test_the_model_refuses_a_negative_price(field: str) -> None:
    price = ModelPrice(model=MODEL, effective_from=timezone.now(), **dict.fromkeys(PRICE_FIELDS, 0) | {field: -1})
    with pytest.raises(ValidationError) as raised:
        price.full_clean()
    assert field in raised.value.message_dict


def test_the_admin_refuses_a_negative_price_with_a_form_error(admin_browser: Client) -> None:
    before = ModelPrice.objects.count()
    now = timezone.now()
    response = admin_browser.post(
        "/admin/support/modelprice/add/",
        {
            "model": MODEL,
            **dict.fromkeys(PRICE_FIELDS, "1000000"),
            "output_per_mtok_micros": "-5000000",
            "effective_from_0": now.strftime("%Y-%m-%d"),
            "effective_from_1": now.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 200
    assert "output_per_mtok_micros" in response.context["adminform"].form.errors
    assert ModelPrice.objects.count() == before


def test_pricing_skips_a_negative_row_and_uses_the_one_before(db: None) -> None:
    negative_row(input_per_mtok_micros=-1_000_000)
    price, fell_back = services.price_resolve(model=MODEL, at=timezone.now())
    assert price is not None and all(getattr(price, name) >= 0 for name in PRICE_FIELDS)
    assert not fell_back


def test_a_chat_still_answers_and_is_priced_after_a_negative_row_slipped_in(
    claude: FakeClaude, anon: APIClient, widget: Any
) -> None:
    negative_row(output_per_mtok_micros=-5_000_000)
    created = anon.post("/api/support/conversations", {"source": "web"}, format="json").json()
    claude.enqueue(Reply(text="Plans start at £0.", input_tokens=45, output_tokens=105))
    client = widget(created["token"])
    client.raise_request_exception = False
    response = client.post(
        f"/api/support/conversations/{created['id']}/chat", {"message": "Price?", "stream": False}, format="json"
    )
    assert response.status_code == 201, response.content[:300]
    # The seeded Haiku row ($1 in, $5 out per MTok): 45 in + 105 out = $0.00057.
    assert Message.objects.get(pk=response.json()["message_id"]).cost_micros == 570
    assert Message.objects.get(role=Role.ASSISTANT).cost_micros == 570
