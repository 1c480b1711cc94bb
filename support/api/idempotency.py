"""The Idempotency-Key header, shared by message logging and chat: read it, document it, refuse misuse."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from support import services
from support.models import IdempotencyRecord

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def idempotency_parameter(description: str) -> OpenApiParameter:
    return OpenApiParameter(IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False, description=description)


def idempotency_key(request: Request) -> str:
    """The request's key ("" when none was sent); 400 naming the header when it is too long."""
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if len(key) > MAX_KEY_LENGTH:
        raise exceptions.ValidationError({IDEMPOTENCY_HEADER: [f"At most {MAX_KEY_LENGTH} characters."]})
    return key


def in_progress_response() -> Response:
    response = Response(
        {"detail": "A request with this Idempotency-Key is still being processed; retry shortly."},
        status=status.HTTP_409_CONFLICT,
    )
    response["Retry-After"] = "1"
    return response


def replay_refusal(record: IdempotencyRecord, fingerprint: str) -> Response | None:
    """Why a stored key cannot be replayed (another body: 400; first request still running: 409), else None."""
    verdict = services.idempotency_verdict(record=record, fingerprint=fingerprint)
    if verdict is services.IdempotencyVerdict.OTHER_BODY:
        raise exceptions.ValidationError(
            {IDEMPOTENCY_HEADER: ["This key was already used with a different request body."]}
        )
    if verdict is services.IdempotencyVerdict.RUNNING:
        return in_progress_response()
    return None
