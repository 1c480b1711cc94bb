from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from support.db import database_ping

logger = logging.getLogger(__name__)


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
