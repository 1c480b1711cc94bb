"""OpenAPI generation that understands `method_dispatch`: one view class per operation on a shared path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.generators import EndpointEnumerator as BaseEnumerator
from drf_spectacular.generators import SchemaGenerator as BaseGenerator
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema


def method_dispatch(**views: type) -> Callable[..., HttpResponse]:
    """Route one URL to a separate APIView per HTTP method, e.g. method_dispatch(get=ListApi, post=CreateApi)."""
    handlers = {method.upper(): view.as_view() for method, view in views.items()}

    @csrf_exempt  # each DRF view enforces CSRF itself for session-authenticated users
    def dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        handler = handlers.get(request.method or "")
        if handler is None and request.method == "OPTIONS":
            handler = next(iter(handlers.values()))
        if handler is None:
            response = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
            response["Allow"] = ", ".join([*handlers, "OPTIONS"])
            return response
        return handler(request, *args, **kwargs)

    dispatch.method_handlers = handlers  # type: ignore[attr-defined]
    return dispatch


class EndpointEnumerator(BaseEnumerator):
    def _get_api_endpoints(self, patterns: Any, prefix: str) -> list[tuple[str, str, str, Any]]:
        endpoints = super()._get_api_endpoints(patterns, prefix)
        for pattern in patterns if patterns is not None else self.patterns:
            handlers = getattr(getattr(pattern, "callback", None), "method_handlers", None)
            if not isinstance(pattern, URLPattern) or not handlers:
                continue
            path_regex = prefix + str(pattern.pattern)
            path = self.get_path_from_regex(path_regex)
            endpoints.extend((path, path_regex, method, callback) for method, callback in handlers.items())
        return endpoints


class SchemaGenerator(BaseGenerator):
    endpoint_inspector_cls = EndpointEnumerator


class AutoSchema(BaseAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        """Nested `MessageCreateApi.InputSerializer` becomes `MessageCreateInput`, unique per operation."""
        cls = serializer.__class__
        owner, _, inner = cls.__qualname__.rpartition(".")
        if owner:
            return owner.removesuffix("Api") + inner.removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)
