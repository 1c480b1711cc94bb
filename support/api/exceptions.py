"""One JSON error shape for the whole API: {"detail": ..., "errors": {field: [messages]}} (DRF's
EXCEPTION_HANDLER)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from support import services
from support.api.ratelimit import RateLimited
from support.db import DATABASE_ERRORS

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is unavailable; try again shortly."


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def _own_response(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The answer to errors DRF does not know: database down, a concurrent change, a body too large."""
    if isinstance(exc, DATABASE_ERRORS):
        logger.error("database error in %s: %s", context.get("view").__class__.__name__, exc)
        return Response({"detail": DATABASE_UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, services.ConversationConflict):
        return Response({"detail": str(exc), "reason": "conflict"}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body too large.", "errors": {"body": ["Request body too large."]}},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return None


def _as_drf(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def _body(exc: Exception) -> dict[str, Any] | None:
    """The body for this DRF exception in the API's shape; None keeps DRF's {"detail": ...}."""
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors if isinstance(errors, list) else [errors]}
        return {"detail": f"Invalid input: {', '.join(errors)}.", "errors": errors}
    if isinstance(exc, exceptions.ParseError):
        return {"detail": str(exc.detail), "errors": {"body": [str(exc.detail)]}}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return {"detail": str(exc.detail), "errors": {"Content-Type": [str(exc.detail)]}}
    if isinstance(exc, exceptions.Throttled):
        reason = exc.reason if isinstance(exc, RateLimited) else "rate_limited"
        return {"detail": str(exc.detail), "reason": reason, "retry_after": getattr(exc, "wait", None)}
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    own = _own_response(exc, context)
    if own is not None:
        return own
    exc = _as_drf(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    body = _body(exc)
    if body is not None:
        response.data = body
    return response
