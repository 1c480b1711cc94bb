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
    return JsonResponse({"status": "ok", "database": "ok", "queue": _queue_state()})


def _queue_state() -> dict[str, object]:
    """The task queue's backlog (tasks waiting for a worker). Informational: a queue that cannot be read
    is reported, but the web process still serves, so /health stays 200."""
    from support.tasks import queue_backlog  # the tasks module loads the services: only when probed

    try:
        return {"pending": queue_backlog()}
    except Exception as exc:  # noqa: BLE001 - any failure is reported as "unavailable"
        logger.warning("health check: task queue unavailable: %s", exc)
        return {"pending": None, "error": type(exc).__name__}
