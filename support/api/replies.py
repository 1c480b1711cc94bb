"""The human handoff's API: POST conversations/{id}/replies (a staff member answers in the conversation) and
GET conversations/{id}/messages?after= (the widget's and the ticket page's poll, with an ETag)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from support import selectors, services
from support.api.access import is_staff
from support.api.serializers import ConversationOutputSerializer, MessageOutputSerializer
from support.models import Conversation, Message

#: The most turns one poll returns; the client polls again from the last one it got.
POLL_LIMIT = 100
#: The browser keeps the poll's answer and asks again with If-None-Match: an unchanged poll is a 304.
POLL_CACHE_CONTROL = "private, no-cache"
NO_SUCH_TURN = "No turn of this conversation has this id."


class ReplyInputSerializer(serializers.Serializer):
    content = serializers.CharField(help_text="The reply, in markdown; 1 to SUPPORT_MAX_MESSAGE_CHARS characters.")
    hand_back = serializers.BooleanField(
        default=False, help_text="Hand the conversation back to the bot with this reply (else a person owns it)."
    )

    def validate_content(self, value: str) -> str:
        limit = settings.SUPPORT_MAX_MESSAGE_CHARS  # per request, so the limit follows the settings in force
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value


class ReplyOutputSerializer(serializers.Serializer):
    message = MessageOutputSerializer()
    conversation = ConversationOutputSerializer()


class AgentSerializer(serializers.Serializer):
    """A staff member as the customer sees them: a first name and an initial, never an email or username."""

    name = serializers.CharField()
    initial = serializers.CharField()


class PollMessageSerializer(serializers.Serializer):
    id = serializers.CharField()
    role = serializers.CharField(help_text="user, assistant (the bot) or agent (a person).")
    content = serializers.CharField()
    created_at = serializers.DateTimeField()
    author = AgentSerializer(allow_null=True, help_text="Who wrote an agent turn; null for the rest.")


class PollOutputSerializer(serializers.Serializer):
    messages = PollMessageSerializer(
        many=True, help_text=f"The turns after `after`, oldest first (at most {POLL_LIMIT})."
    )
    handled_by = serializers.CharField(help_text="bot, or human: a person answers and the bot is silent.")
    status = serializers.CharField()
    agent = AgentSerializer(allow_null=True, help_text="The person answering while handled_by is human.")


class PollQuerySerializer(serializers.Serializer):
    after = serializers.CharField(
        required=False, max_length=64, help_text="The id of the last turn the caller has; omit it for every turn."
    )


def reply_create(request: Request, conversation: Conversation) -> Response:
    """Store a staff member's reply; 201 with the message and the conversation after it."""
    data = ReplyInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    message = services.conversation_reply(
        conversation=conversation,
        author=request.user,
        content=data.validated_data["content"],
        hand_back=data.validated_data["hand_back"],
    )
    body = ReplyOutputSerializer({"message": message, "conversation": conversation}).data
    return Response(body, status=status.HTTP_201_CREATED)


def messages_poll(request: Request, conversation: Conversation) -> Response:
    """The turns after `after` with who answers now. An unchanged answer is a 304 decided from two small
    reads (the conversation, already read for the token check, and its newest turn's id), before the turn
    `after` names is read or anything is serialised: a matching If-None-Match can only be a tag this
    endpoint gave for that `after`, and it gives none for an `after` that is not a turn of the conversation."""
    query = PollQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    after_id = query.validated_data.get("after")
    after_pk = None if after_id is None else selectors.message_pk(after_id)
    if after_id is not None and after_pk is None:
        raise exceptions.ValidationError({"after": [NO_SUCH_TURN]})
    tag = _etag(conversation, after_pk=after_pk, latest=selectors.message_latest_id(conversation=conversation))
    unchanged = tag in _if_none_match(request)
    after = None if unchanged else _after(conversation, after_id)
    if not is_staff(request):
        services.conversation_seen(conversation=conversation)
    if unchanged:
        response = Response(status=status.HTTP_304_NOT_MODIFIED)
    else:
        turns = selectors.message_list_after(conversation=conversation, after=after, limit=POLL_LIMIT)
        agent = selectors.conversation_agent(conversation=conversation)
        response = Response(
            PollOutputSerializer(
                {
                    "messages": [_poll_message(turn) for turn in turns],
                    "handled_by": conversation.handled_by,
                    "status": conversation.status,
                    "agent": selectors.agent_display(agent),
                }
            ).data
        )
    response["ETag"] = tag
    response["Cache-Control"] = POLL_CACHE_CONTROL
    return response


def _after(conversation: Conversation, after_id: str | None) -> Message | None:
    if after_id is None:
        return None
    after = selectors.message_get(conversation=conversation, message_id=after_id)
    if after is None:
        raise exceptions.ValidationError({"after": [NO_SUCH_TURN]})
    return after


def _poll_message(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.pk),
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at,
        "author": selectors.agent_display(message.author),
    }


def _etag(conversation: Conversation, *, after_pk: Any, latest: Any) -> str:
    """Changes whenever the answer could: a new turn, who answers, the status or the assignee (the agent)."""
    parts = (
        conversation.pk,
        after_pk,
        latest,
        conversation.handled_by,
        conversation.status,
        conversation.assigned_to_id,
    )
    return '"' + hashlib.sha256(repr(parts).encode()).hexdigest()[:32] + '"'


def _if_none_match(request: Request) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    # A weak validator (W/"...") names the same answer here: proxies may weaken a tag they compress.
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}
