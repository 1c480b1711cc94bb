"""A superuser and a client logged in as them, for the admin pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def boss(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "correct-horse-battery")


@pytest.fixture
def admin_client_for(boss: Any) -> Client:
    client = Client()
    client.force_login(boss)
    return client
