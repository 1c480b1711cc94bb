"""Widget rate limits, kept in the shared cache so every gunicorn worker counts together."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from support.api.access import is_staff

logger = logging.getLogger(__name__)
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_-]")


class WidgetThrottle(SimpleRateThrottle):
    """Base: staff are never throttled; a broken cache lets traffic through with a warning."""

    setting_name = ""

    def get_rate(self) -> str:
        return getattr(settings, self.setting_name)

    def allow_request(self, request: Any, view: Any) -> bool:
        if is_staff(request):
            return True
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - any cache failure must not become a 500
            logger.warning("throttle %s skipped, cache unavailable: %s", self.scope, exc)
            return True


class ClientIPThrottle(WidgetThrottle):
    scope = "widget_ip"
    setting_name = "SUPPORT_THROTTLE_IP_RATE"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ConversationCreateThrottle(ClientIPThrottle):
    scope = "conversation_create"
    setting_name = "SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE"


class PerConversationThrottle(WidgetThrottle):
    scope = "conversation"
    setting_name = "SUPPORT_THROTTLE_CONVERSATION_RATE"

    def get_cache_key(self, request: Any, view: Any) -> str:
        # The id comes straight from the URL: keep cache keys to plain characters (a real id is one).
        ident = _UNSAFE_KEY_CHARS.sub("_", str(view.kwargs.get("conversation_id", ""))[:64])
        return self.cache_format % {"scope": self.scope, "ident": ident}
