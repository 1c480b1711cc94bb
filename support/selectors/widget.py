"""What the embedded widget is configured with."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from support.selectors.business import venue_for


def widget_config(*, business_id: str = "") -> dict[str, Any]:
    """What the embedded widget shows before the script tag's data-* attributes override it; a business's
    profile (BusinessProfile) names its title, greeting and support email."""
    venue = venue_for(business_id=business_id)
    return {
        "title": venue.title,
        "greeting": venue.greeting,
        "quick_questions": list(settings.SUPPORT_WIDGET_QUICK_QUESTIONS),
        "primary_colour": settings.SUPPORT_WIDGET_PRIMARY_COLOUR,
        "position": settings.SUPPORT_WIDGET_POSITION,
        "support_email": venue.support_email,
        "max_message_chars": settings.SUPPORT_MAX_MESSAGE_CHARS,
    }
