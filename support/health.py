from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


def database_ping() -> None:
    """Raise when the database cannot answer a trivial round trip.

    On SQLite the backend (rezvo_support/sqlite_file) also raises DatabaseFileMissing or
    DatabaseFileReplaced when the file at SQLITE_PATH is gone or is not the one this process opened,
    closing the stale connection; the class name is the 503's reason."""
    if connection.vendor == "mongodb":
        connection.ensure_connection()
        connection.connection.admin.command("ping")
    else:
        with connection.cursor() as cursor:
            # A real table, not "SELECT 1": SQLite answers that without opening the database
            # file, so a locked or missing database would still look healthy.
            cursor.execute("SELECT 1 FROM django_migrations LIMIT 1")


@never_cache
@require_safe  # GET and HEAD: uptime checkers and load balancers often probe with HEAD
def health(request: HttpRequest) -> JsonResponse:
    try:
        database_ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported as 503
        logger.error("health check: database unavailable: %s", exc)
        return JsonResponse(
            # The class only: /health is public, and a driver's message can name internal hosts
            # (pymongo's lists the replica set members). The full text is in the log above.
            {"status": "error", "database": "unavailable", "reason": type(exc).__name__},
            status=503,
        )
    return JsonResponse({"status": "ok", "database": "ok"})
