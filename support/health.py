from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def database_ping() -> None:
    """Raise when the database cannot answer a trivial round trip."""
    if connection.vendor == "mongodb":
        connection.ensure_connection()
        connection.connection.admin.command("ping")
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    try:
        database_ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported as 503
        logger.error("health check: database unavailable: %s", exc)
        return JsonResponse(
            {"status": "error", "database": "unavailable", "reason": f"{type(exc).__name__}: {exc}"[:300]},
            status=503,
        )
    return JsonResponse({"status": "ok", "database": "ok"})
