"""Widget rate limits: atomic counters (support.limiter) that every gunicorn worker shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from support import selectors
from support.api.access import is_staff
from support.limiter import Verdict, rate_limit_hit, rate_limit_redis_hit, rate_limit_redis_verdict
from support.selectors import PollState, PollStateRead

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
        verdict = rate_limit_hit(
            rate=getattr(settings, self.setting_name), scope=self.scope, ident=self.key(request, view)
        )
        self.retry_after_s = verdict.retry_after_s
        return verdict.allowed

    def key(self, request: Any, view: Any) -> str:
        return _UNSAFE_KEY_CHARS.sub("_", str(self.ident_for(request, view))[:64])

    def wait(self) -> float | None:
        return self.retry_after_s or None


class ClientIPThrottle(WidgetThrottle):
    scope = "widget_ip"
    setting_name = "SUPPORT_THROTTLE_IP_RATE"


class PollClientIPThrottle(ClientIPThrottle):
    """ClientIPThrottle for the widget's poll (GET conversations/{id}/messages): the hit is counted in the
    Redis round trip that reads the poll's cached state (support/poll_cache.py), which the view then uses
    (view.poll_state), so an unchanged poll costs one round trip in all. Same counter as ClientIPThrottle;
    when the cache is not the limiter's Redis it counts apart, as ClientIPThrottle does. A poll the early
    path (support.api.poll_fast) counted already and passed on is not counted again."""

    def allow_request(self, request: Any, view: Any) -> bool:
        if is_staff(request):
            return True
        counted = getattr(request._request, COUNTED, None)
        read = counted or poll_read_counted(self, request, view.kwargs.get("conversation_id"))
        if read is None:
            return super().allow_request(request, view)
        view.poll_state = PollStateRead(read.state)
        self.retry_after_s = read.verdict.retry_after_s
        return read.verdict.allowed


#: Where the early path leaves the poll it counted on the request (a CountedPoll).
COUNTED = "support_poll_counted"


@dataclass(frozen=True)
class CountedPoll:
    verdict: Verdict
    state: PollState | None


def poll_read_counted(throttle: ClientIPThrottle, request: Any, conversation_id: Any) -> CountedPoll | None:
    """The poll's hit of the per-IP limit counted in the round trip that reads its cached state; None when
    the two cannot share one (the limiter's store is not the cache's Redis, or is resting after a failure)."""
    pk = selectors.conversation_pk(conversation_id)
    hit = rate_limit_redis_hit(
        rate=getattr(settings, throttle.setting_name), scope=throttle.scope, ident=throttle.key(request, None)
    )
    fused = None if hit is None or pk is None else selectors.poll_state_get_counting(conversation_pk=pk, hit=hit)
    if hit is None or fused is None:
        return None
    return CountedPoll(verdict=rate_limit_redis_verdict(hit, fused[1]), state=fused[0])


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
