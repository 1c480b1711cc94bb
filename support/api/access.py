"""Who may touch a conversation: staff, or the widget holding that conversation's secret."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions

from support.models import Conversation
from support.selectors import conversation_get, conversation_token_matches

TOKEN_HEADER = "X-Conversation-Token"


def is_staff(request: Any) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_staff)


def conversation_for_request(request: Any, conversation_id: str) -> Conversation:
    """The conversation, if the caller is staff or sent its token; 404 / 401 / 403 otherwise."""
    conversation = conversation_get(conversation_id=conversation_id)
    if is_staff(request):
        return conversation
    token = request.headers.get(TOKEN_HEADER, "")
    if not token:
        raise exceptions.NotAuthenticated(f"Send the conversation's token in the {TOKEN_HEADER} header.")
    if not conversation_token_matches(conversation=conversation, token=token):
        raise exceptions.PermissionDenied(f"The {TOKEN_HEADER} header does not match this conversation.")
    return conversation


def acting_as(request: Any) -> dict[str, Any]:
    """Who a ticket event names for this request: the staff user, or the widget (no user)."""
    if is_staff(request):
        return {"actor": request.user, "actor_label": request.user.get_username()}
    from support.services import WIDGET

    return {"actor": None, "actor_label": WIDGET}
