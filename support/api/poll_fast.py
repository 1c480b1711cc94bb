"""The widget's unchanged poll, answered before the session, CSRF, auth and DRF layers.

An open widget polls every 3 s while a person owns its conversation or it waits in the queue, and almost
every poll is unchanged: a 304 from one Redis round trip (the version, the token hash, the last-seen stamp
and the per-IP limit's hit). Measured in-process, the middleware below this one and DRF's dispatch took
about half of such a poll. This answers exactly the polls the view would answer 304 from the cache, with
the view's own decision (replies.cached_poll_tag) and the same counted hit; anything else goes on to the
view, with the hit it counted, so nothing is counted twice. Staff (a token or a session cookie) always
take the full path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, HttpResponseNotModified
from django.urls import Resolver404, resolve

from support import selectors
from support.api import replies
from support.api.throttles import COUNTED, PollClientIPThrottle, poll_read_counted

_TOKEN_META = "HTTP_X_CONVERSATION_TOKEN"


class PollNotModifiedMiddleware:
    """Placed after the CORS middleware: the widget on a customer's site needs its headers on the 304 too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        answer = _not_modified(request)
        return answer if answer is not None else self.get_response(request)


def _not_modified(request: HttpRequest) -> HttpResponseBase | None:
    meta = request.META
    if (
        request.method != "GET"
        or "HTTP_IF_NONE_MATCH" not in meta
        or _TOKEN_META not in meta
        or "HTTP_AUTHORIZATION" in meta
        or settings.SESSION_COOKIE_NAME in request.COOKIES
        or not request.path_info.endswith("/messages")
    ):
        return None
    conversation_id = _polled_conversation(request.path_info)
    if conversation_id is None:
        return None
    read = poll_read_counted(PollClientIPThrottle(), request, conversation_id)
    if read is None:
        return None
    setattr(request, COUNTED, read)  # the view's throttle uses this count instead of counting again
    if not read.verdict.allowed or read.state is None:
        return None
    pk = selectors.conversation_pk(conversation_id)
    tag = replies.cached_poll_tag(request, read.state, pk=pk, staff=False)
    return None if tag is None else replies.poll_headers(HttpResponseNotModified(), tag)


def _polled_conversation(path: str) -> Any:
    """The conversation id when `path` is the poll's route (GET conversations/{id}/messages), else None."""
    from support.api.conversations import ConversationViewSet

    try:
        match = resolve(path)
    except Resolver404:
        return None
    view = match.func
    if getattr(view, "cls", None) is not ConversationViewSet or view.actions.get("get") != "messages_poll":  # type: ignore[attr-defined]
        return None
    return match.kwargs.get("conversation_id")
