"""Structured request logs: one JSON line per request (ts, method, path, status, latency_ms, request_id).

Only the path is logged: no query string (staff searches carry customer text), no headers (the
widget's X-Conversation-Token and staff API tokens travel there) and never a body. JSON encoding
also means a path carrying CR/LF cannot forge a second log line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

logger = logging.getLogger("rezvo.request")

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is reused so one request can be followed through nginx and gunicorn; anything
# that is not a short plain token is replaced, so a client cannot inject text into the logs.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_for(request: HttpRequest) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestLogMiddleware:
    """Outermost middleware, so the latency covers every other middleware and the view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]  # set here, read by views and logs
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        if isinstance(response, StreamingHttpResponse):
            # A streamed reply (chat over SSE) is logged when the server closes it, so the
            # latency is the whole stream, not just the time to the first byte.
            response._resource_closers.append(lambda: self._log(request, response, started))
        else:
            self._log(request, response, started)
        return response

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, started: float) -> None:
        logger.info(
            "request",
            extra={
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                    "request_id": request.request_id,  # type: ignore[attr-defined]
                }
            },
        )


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., **record.http}` for request records; other records become {"ts", "level", "logger", "message"}."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        http: dict[str, Any] | None = getattr(record, "http", None)
        if http is not None:
            line: dict[str, Any] = {"ts": ts, **http}
        else:
            line = {"ts": ts, "level": record.levelname, "logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (gunicorn, systemd and pytest all swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)
