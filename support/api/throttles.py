"""Widget rate limits: atomic counters (support.limiter) that every gunicorn worker shares."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from support.api.access import is_staff
from support.limiter import rate_limit_hit

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")


class WidgetThrottle(BaseThrottle):
    """Base: staff are never throttled; a broken store lets traffic through with a warning."""

    scope = ""
    setting_name = ""

    def __init__(self) -> None:
        self.retry_after_s = 0

    def ident_for(self, request: Any, view: Any) -> str:
        return self.get_ident(request)

    def allow_request(self, request: Any, view: Any) -> bool:
        if is_staff(request):
            return True
        ident = _UNSAFE_KEY_CHARS.sub("_", str(self.ident_for(request, view))[:64])
        verdict = rate_limit_hit(rate=getattr(settings, self.setting_name), scope=self.scope, ident=ident)
        self.retry_after_s = verdict.retry_after_s
        return verdict.allowed

    def wait(self) -> float | None:
        return self.retry_after_s or None


class ClientIPThrottle(WidgetThrottle):
    scope = "widget_ip"
    setting_name = "SUPPORT_THROTTLE_IP_RATE"


class ConversationCreateThrottle(ClientIPThrottle):
    scope = "conversation_create"
    setting_name = "SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE"


class PerConversationThrottle(WidgetThrottle):
    """Keyed by the conversation the caller proved it holds (WidgetApi.conversation_checked): run only
    after the token check, so requests without the token never use up a stranger's conversation."""

    scope = "conversation"
    setting_name = "SUPPORT_THROTTLE_CONVERSATION_RATE"

    def ident_for(self, request: Any, view: Any) -> str:
        return str(view.checked_conversation.pk)
