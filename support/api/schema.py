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
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers


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


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (support/api/errors.py)."""

    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per field (or body / Content-Type / header name): what is wrong with it.",
    )
    reason = serializers.CharField(required=False, help_text="429 only: which rate limit was hit.")
    retry_after = serializers.IntegerField(required=False, allow_null=True, help_text="429 only: seconds to wait.")


class AutoSchema(BaseAutoSchema):
    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        """Document the JSON errors each operation can answer with, so clients (and schemathesis) can rely on them."""
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        has_body = self.method in ("POST", "PUT", "PATCH")
        has_query = self._has_query_parameters()
        throttled = bool(getattr(self.view, "throttle_classes", None))
        errors: dict[int, str] = {}
        if has_body or has_query:
            errors[400] = "Invalid input; `errors` names each field."
        errors[401] = "No credentials: a staff token/session or the conversation's X-Conversation-Token."
        errors[403] = "Credentials that do not give access to this (wrong token, not staff, missing CSRF)."
        if "{" in self.path or getattr(self.view, "pagination_class", None):
            errors[404] = "No such conversation, or a page past the end."
        takes_key = any(
            isinstance(p, OpenApiParameter) and p.name == "Idempotency-Key" for p in self.get_override_parameters()
        )
        if takes_key:
            errors[409] = "A request with this Idempotency-Key is still running; retry after Retry-After."
        if has_body:
            errors[413] = "Body larger than DATA_UPLOAD_MAX_MEMORY_SIZE."
            errors[415] = "Body is not application/json."
        if throttled:
            errors[429] = "Rate limited; `reason` names the limit, Retry-After says when to retry."
        errors[503] = "The database is unavailable."
        widget_serializer = getattr(self.view, "WidgetOutputSerializer", None)
        if widget_serializer is not None:
            # Staff and the widget get different shapes from the same operation: either is valid.
            widget_ref = self.resolve_serializer(widget_serializer(), "response").ref
            for code in ("200", "201"):
                content = responses.get(code, {}).get("content", {}).get("application/json")
                if content:
                    content["schema"] = {"anyOf": [content["schema"], widget_ref]}
        ref = self.resolve_serializer(ErrorSerializer(), "response").ref
        for code, description in errors.items():
            responses.setdefault(
                str(code), {"description": description, "content": {"application/json": {"schema": ref}}}
            )
        return responses

    def _has_query_parameters(self) -> bool:
        for parameter in self.get_override_parameters():
            if not isinstance(parameter, OpenApiParameter) or parameter.location == OpenApiParameter.QUERY:
                return True  # a serializer of query parameters, or one query parameter
        return False

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        """Nested `MessageCreateApi.InputSerializer` becomes `MessageCreateInput`, unique per operation."""
        cls = serializer.__class__
        owner, _, inner = cls.__qualname__.rpartition(".")
        if owner:
            return owner.removesuffix("Api") + inner.removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)
