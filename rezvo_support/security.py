"""Request-level security helpers shared by settings-driven libraries."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle


def client_ip(request: HttpRequest) -> str:
    """The client address the same way the API's rate limits read it (DRF's NUM_PROXIES rule)."""
    return BaseThrottle().get_ident(request)
