"""Who may touch a conversation: staff, or the widget holding that conversation's secret."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from support import selectors
from support.models import Conversation

TOKEN_HEADER = "X-Conversation-Token"
#: One answer for an unknown id, a missing token and a wrong one: a caller without the token cannot
#: tell which ids exist.
NO_SUCH_CONVERSATION = "No conversation with this id for this token."
#: What staff are told for an unknown id.
NO_SUCH_ID = "No conversation matches the given id."


def is_staff(request: Any) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_staff)


def conversation_or_404(conversation_id: str, *, user: Any, with_assignee: bool = True) -> Conversation:
    """The conversation with this id (for staff `user`), or the 404 naming the id as unknown; the same 404
    for a conversation of a business the user may not see (StaffScope)."""
    conversation = selectors.conversation_get(conversation_id=conversation_id, with_assignee=with_assignee, user=user)
    if conversation is None:
        raise Http404(NO_SUCH_ID)
    return conversation


def conversation_for_request(request: Any, conversation_id: str, *, with_assignee: bool = True) -> Conversation:
    """The conversation, if the caller is staff or sent its token; otherwise the same 404 whether the id
    exists or not. `with_assignee=False` skips joining the assignee (read later only if needed)."""
    if is_staff(request):
        return conversation_or_404(conversation_id, user=request.user, with_assignee=with_assignee)
    conversation = selectors.conversation_get(conversation_id=conversation_id, with_assignee=with_assignee)
    token = request.headers.get(TOKEN_HEADER, "")
    if conversation is None or not selectors.conversation_token_matches(conversation=conversation, token=token):
        raise Http404(NO_SUCH_CONVERSATION)
    return conversation


def acting_as(request: Any) -> dict[str, Any]:
    """Who a ticket event names for this request: the staff user, or the widget (no user)."""
    if is_staff(request):
        return {"actor": request.user, "actor_label": request.user.get_username()}
    from support.services import WIDGET

    return {"actor": None, "actor_label": WIDGET}
