"""Links into the ticket list: every dashboard figure drills down to the tickets it counts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import reverse


def list_url(**params: Any) -> str:
    """The ticket list filtered by `params` (what every dashboard figure links to)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "", [])}, doseq=True)
    return f"{reverse('dashboard:conversations')}?{query}" if query else reverse("dashboard:conversations")
