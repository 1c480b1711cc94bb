"""The LOGGING setting (settings.py reads the environment and passes what it found)."""

from __future__ import annotations

from typing import Any


def logging_config(*, level: str, request_log: bool) -> dict[str, Any]:
    """Plain console logging at `level`, and one JSON line per request on stdout unless `request_log` is off
    (REQUEST_LOG=false, e.g. behind a proxy that logs)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "rezvo_support.request_log.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler"},
            "request_json": {"class": "rezvo_support.request_log.StdoutHandler", "formatter": "json"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            # django-axes logs every reset at INFO; lockouts come at WARNING and stay.
            "axes": {"level": "WARNING"},
            # One JSON line per request on stdout; REQUEST_LOG=false silences it (e.g. behind a proxy that logs).
            "rezvo.request": {
                "handlers": ["request_json"],
                "level": "INFO" if request_log else "WARNING",
                "propagate": False,
            },
        },
    }
