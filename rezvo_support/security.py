"""Request-level security helpers shared by settings-driven libraries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    from rest_framework.request import Request


def client_ip(request: HttpRequest) -> str:
    """The client address the same way the API's rate limits read it (DRF's NUM_PROXIES rule)."""
    # get_ident reads only request.META, which a plain HttpRequest has as well as DRF's Request.
    return BaseThrottle().get_ident(cast("Request", request))


# Staff pages, the staff and widget API (transcripts, contact emails) and the CSV export: nothing a
# shared or browser cache may keep. A response that chose its own caching (the public widget config,
# the chat stream) keeps it.
PRIVATE_PREFIXES = ("/dashboard/", "/admin/", "/accounts/", "/api/support/")


class NoStoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path_info.startswith(PRIVATE_PREFIXES) and not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response
