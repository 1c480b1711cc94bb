"""One JSON error shape for the whole API: {"detail": ..., "errors": {field: [messages]}}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from support.db import DATABASE_ERRORS
from support.services import ConversationConflict

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is unavailable; try again shortly."


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DATABASE_ERRORS):
        logger.error("database error in %s: %s", context.get("view").__class__.__name__, exc)
        return Response({"detail": DATABASE_UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, ConversationConflict):
        return Response({"detail": str(exc), "reason": "conflict"}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body too large.", "errors": {"body": ["Request body too large."]}},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors if isinstance(errors, list) else [errors]}
        fields = ", ".join(errors)
        response.data = {"detail": f"Invalid input: {fields}.", "errors": errors}
    elif isinstance(exc, exceptions.ParseError):
        response.data = {"detail": str(exc.detail), "errors": {"body": [str(exc.detail)]}}
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        response.data = {"detail": str(exc.detail), "errors": {"Content-Type": [str(exc.detail)]}}
    elif isinstance(exc, exceptions.Throttled):
        reason = getattr(exc, "reason", "rate_limited")
        response.data = {"detail": str(exc.detail), "reason": reason, "retry_after": exc.wait}
    return response


def _wants_json(request: Any) -> bool:
    return request.path.startswith("/api/") or request.path == "/health"


def handler404(request: Any, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def handler500(request: Any) -> HttpResponse:
    # No traceback or exception text: with DEBUG off nothing internal leaves the server.
    if _wants_json(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)
