"""Who may call each API action and which rate limits it counts against: the one table the ViewSets read.

`throttles` run before the action (per client IP; staff are never throttled). `conversation_throttles`
run once the caller has shown the conversation's token (ApiViewSet.conversation_checked), so a request
that fails the check counts against its own IP only, never against the conversation it named.

The key is (ViewSet.policy_name, action); action None is any method the ViewSet does not answer (405),
"metadata" is OPTIONS on a ViewSet's list path and "metadata/detail" OPTIONS on a path with an id.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser

from support.api.throttles import (
    ClientIPThrottle,
    ConversationCreateThrottle,
    PerConversationThrottle,
    PollClientIPThrottle,
    WidgetThrottle,
)


@dataclass(frozen=True)
class Policy:
    permissions: tuple[type[BasePermission], ...]
    throttles: tuple[type[WidgetThrottle], ...] = ()
    conversation_throttles: tuple[type[PerConversationThrottle], ...] = ()


STAFF = Policy(permissions=(IsAdminUser,))
#: Staff, or the widget with the conversation's token (checked by the action, per conversation).
WIDGET = Policy(permissions=(AllowAny,), throttles=(ClientIPThrottle,))
#: A method the path does not answer: 405 before any credential is looked at.
NOT_ALLOWED = Policy(permissions=(AllowAny,))

POLICIES: dict[tuple[str, str | None], Policy] = {
    ("conversations", "list"): STAFF,
    ("conversations", "create"): Policy(
        permissions=(AllowAny,), throttles=(ClientIPThrottle, ConversationCreateThrottle)
    ),
    ("conversations", "retrieve"): WIDGET,
    ("conversations", "partial_update"): STAFF,
    ("conversations", "messages"): Policy(
        permissions=(AllowAny,), throttles=(ClientIPThrottle,), conversation_throttles=(PerConversationThrottle,)
    ),
    # The poll counts its per-IP hit in the round trip that reads its cached state (issue 12's polling bench).
    ("conversations", "messages_poll"): Policy(permissions=(AllowAny,), throttles=(PollClientIPThrottle,)),
    ("conversations", "replies"): STAFF,
    ("conversations", "rating"): WIDGET,
    ("conversations", "contact"): WIDGET,
    ("conversations", "metadata"): STAFF,
    ("conversations", "metadata/detail"): WIDGET,
    ("conversations", None): NOT_ALLOWED,
    ("tickets", "list"): STAFF,
    ("tickets", "metadata"): STAFF,
    ("tickets", None): STAFF,
    ("analytics", "list"): STAFF,
    ("analytics", "metadata"): STAFF,
    ("analytics", None): STAFF,
    # Public and the same for everyone (the ViewSet also skips authentication so it may be cached).
    ("widget_config", "list"): WIDGET,
    ("widget_config", "metadata"): WIDGET,
    ("widget_config", None): WIDGET,
    # Issue 15: a verified customer's own conversations, authorised by the user_hash in the body.
    ("customer_history", "create"): WIDGET,
    ("customer_history", None): NOT_ALLOWED,
}
# POST conversations/{id}/chat is its own APIView (support/api/chat.py) with the `messages` policy.
