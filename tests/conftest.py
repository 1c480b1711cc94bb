from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from support import services
from support.models import Conversation

ON_SECANTUS = os.environ.get("MONGODB_SERVER_KIND") == "secantus"

# The SQLite test database is a file under var/ (see settings); a clean clone has no var/ yet.
(Path(__file__).resolve().parent.parent / "var").mkdir(exist_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, by name and reason, tests that need real-MongoDB behaviour SecantusDB lacks."""
    for item in items:
        marker = item.get_closest_marker("secantus_differs")
        if marker and ON_SECANTUS:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"secantus_differs: {reason}"))


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters live in the cache; no test inherits another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _prices(request: pytest.FixtureRequest) -> None:
    # MongoDB has no test transactions, so each test flushes the price rows migrate seeded.
    if "db" in request.fixturenames or "transactional_db" in request.fixturenames:
        services.model_price_ensure_defaults()


@pytest.fixture
def on_mongodb() -> bool:
    return connection.vendor == "mongodb"


@pytest.fixture
def staff_user(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(
        username="agent", password="correct-horse-battery", is_staff=True, email="agent@example.com"
    )


@pytest.fixture
def other_staff(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="lead", password="correct-horse-battery", is_staff=True)


@pytest.fixture
def customer_user(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="customer", password="correct-horse-battery")


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def staff(staff_user: Any) -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=staff_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def make_conversation(db: None) -> Callable[..., tuple[Conversation, str]]:
    def make(**kwargs: Any) -> tuple[Conversation, str]:
        return services.conversation_create(**kwargs)

    return make


@pytest.fixture
def widget(anon: APIClient) -> Callable[[str], APIClient]:
    """A client that carries one conversation's secret, as the embedded widget does."""

    def for_token(token: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_CONVERSATION_TOKEN=token)
        return client

    return for_token
