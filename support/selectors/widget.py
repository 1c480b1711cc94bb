"""What the embedded widget is configured with."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def widget_config() -> dict[str, Any]:
    """What the embedded widget shows before the script tag's data-* attributes override it."""
    return {
        "title": settings.SUPPORT_WIDGET_TITLE,
        "greeting": settings.SUPPORT_WIDGET_GREETING,
        "quick_questions": list(settings.SUPPORT_WIDGET_QUICK_QUESTIONS),
        "primary_colour": settings.SUPPORT_WIDGET_PRIMARY_COLOUR,
        "position": settings.SUPPORT_WIDGET_POSITION,
        "support_email": settings.SUPPORT_EMAIL,
        "max_message_chars": settings.SUPPORT_MAX_MESSAGE_CHARS,
    }
