"""The human handoff's API: POST conversations/{id}/replies (a staff member answers in the conversation) and
GET conversations/{id}/messages?after= (the widget's and the ticket page's poll, with an ETag)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from support import selectors, services
from support.api.access import TOKEN_HEADER, conversation_for_request, is_staff
from support.api.serializers import ConversationOutputSerializer, MessageOutputSerializer, represent, validated
from support.models import Conversation, Message

#: The most turns one poll returns; the client polls again from the last one it got.
POLL_LIMIT = 100
_R = TypeVar("_R", bound=HttpResponseBase)
#: The browser keeps the poll's answer and asks again with If-None-Match: an unchanged poll is a 304.
POLL_CACHE_CONTROL = "private, no-cache"
NO_SUCH_TURN = "No turn of this conversation has this id."
AFTER_MAX_LENGTH = 64


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
        required=False,
        max_length=AFTER_MAX_LENGTH,
        help_text="The id of the last turn the caller has; omit it for every turn.",
    )


def reply_create(request: Request, conversation: Conversation) -> Response:
    """Store a staff member's reply; 201 with the message and the conversation after it."""
    values = validated(ReplyInputSerializer, request.data)
    message = services.conversation_reply(
        conversation=conversation, author=request.user, content=values["content"], hand_back=values["hand_back"]
    )
    body = represent(ReplyOutputSerializer, {"message": message, "conversation": conversation})
    return Response(body, status=status.HTTP_201_CREATED)


def messages_poll(request: Request, conversation_id: str, *, read: selectors.PollStateRead | None = None) -> Response:
    """The turns after `after` with who answers now, tagged with the conversation's poll version.

    An unchanged poll (If-None-Match equal to the tag for this `after` and the cached version) is a 304 from
    one cache round trip: the version, the token hash and the last-seen stamp; no database query. Else the
    version is read (or started) before the database, so the tag of a 200 is never newer than its body.
    A matching If-None-Match can only be a tag this endpoint gave for that `after`, and it gives none for an
    `after` that is not a turn of the conversation. Without the cache the tag is made from the database."""
    staff = is_staff(request)
    pk = selectors.conversation_pk(conversation_id)
    if read is not None:  # the throttle read it in its round trip
        state = read.state
    else:
        state = None if pk is None else selectors.poll_state_get(conversation_pk=pk)
    if state is not None:
        cached = _cached_304(request, state, pk=pk, staff=staff)
        if cached is not None:
            return cached
    version = state.version if state is not None and state.version else None
    if version is None and pk is not None:
        version = selectors.poll_version_get(conversation_pk=pk)
    conversation = conversation_for_request(request, conversation_id, with_assignee=False)
    if state is not None and state.token_hash is None:
        services.poll_token_remember(conversation=conversation)
    return _from_database(request, conversation, state=state, version=version, staff=staff)


def _from_database(
    request: Request, conversation: Conversation, *, state: selectors.PollState | None, version: str | None, staff: bool
) -> Response:
    """The poll answered from the rows (the caller may see the conversation; `version` was read before it)."""
    after_id = validated(PollQuerySerializer, request.query_params).get("after")
    after_pk = None if after_id is None else selectors.message_pk(after_id)
    if after_id is not None and after_pk is None:
        raise exceptions.ValidationError({"after": [NO_SUCH_TURN]})
    latest = selectors.message_latest_id(conversation=conversation)

    def tag_for(after_pk: Any) -> str:
        if version:
            return _version_tag(conversation.pk, after_pk, version)
        return _etag(conversation, after_pk=after_pk, latest=latest)

    # The tag made of the rows is also accepted: a widget that polled while the cache was down holds one,
    # and its first poll after the outage is then a 304 too, not a second 200.
    rows_tag = _etag(conversation, after_pk=after_pk, latest=latest)
    unchanged = bool({tag_for(after_pk), rows_tag} & _if_none_match(request))
    after = None if unchanged else _after(conversation, after_id)
    if not staff:
        _seen(conversation, state)
    if unchanged:
        return poll_headers(Response(status=status.HTTP_304_NOT_MODIFIED), tag_for(after_pk))
    turns = selectors.message_list_after(conversation=conversation, after=after, limit=POLL_LIMIT)
    # With every turn there is, the tag is the one of the poll the client sends next (after its last turn):
    # that poll is then a 304, not a 200 with nothing new. A page cut at POLL_LIMIT keeps its own tag.
    next_after = turns[-1].pk if turns and len(turns) < POLL_LIMIT else after_pk
    return poll_headers(Response(_poll_body(conversation, turns)), tag_for(next_after))


def _cached_304(request: Request, state: selectors.PollState, *, pk: Any, staff: bool) -> Response | None:
    tag = cached_poll_tag(request, state, pk=pk, staff=staff)
    return None if tag is None else poll_headers(Response(status=status.HTTP_304_NOT_MODIFIED), tag)


def cached_poll_tag(request: HttpRequest | Request, state: selectors.PollState, *, pk: Any, staff: bool) -> str | None:
    """The tag of the 304 for an unchanged poll, decided from the cache alone (the widget's last-seen stamp
    noted); None when the database must answer. `after` is read without the serializer: anything it would
    refuse (blank, too long, not an id) has no tag, so it goes on to the full validation and its 400."""
    after_id = request.GET.get("after")
    after_pk = None if after_id is None else selectors.message_pk(after_id)
    if after_id is not None and (after_pk is None or len(after_id) > AFTER_MAX_LENGTH):
        return None
    if not _unchanged(request, state, pk=pk, after_pk=after_pk, staff=staff):
        return None
    if not staff:
        services.conversation_seen_cached(conversation_id=pk, seen_ms=state.seen_ms)
    return _version_tag(pk, after_pk, state.version)


def _unchanged(
    request: HttpRequest | Request, state: selectors.PollState, *, pk: Any, after_pk: Any, staff: bool
) -> bool:
    """The cached version says nothing changed since the caller's tag, and the caller may see the conversation
    (staff, or the widget whose token hashes to the cached hash; the hash is compared in constant time)."""
    if not state.version or not _if_none_match(request):
        return False
    if not staff:
        if state.token_hash is None or not services.conversation_seen_cache_available():
            return False  # the token check, or the seen stamp, needs the database
        token = request.headers.get(TOKEN_HEADER, "")
        if not token or not hmac.compare_digest(state.token_hash, selectors.token_hash(token)):
            return False  # the database path answers 404, exactly as for an unknown id
    return _version_tag(pk, after_pk, state.version) in _if_none_match(request)


def _seen(conversation: Conversation, state: selectors.PollState | None) -> None:
    if services.conversation_seen_cache_available():
        services.conversation_seen_cached(
            conversation_id=conversation.pk, seen_ms=None if state is None else state.seen_ms
        )
    else:
        services.conversation_seen(conversation=conversation)


def _poll_body(conversation: Conversation, turns: list[Message]) -> Any:
    agent = selectors.conversation_agent(conversation=conversation)
    return represent(
        PollOutputSerializer,
        {
            "messages": [_poll_message(turn) for turn in turns],
            "handled_by": conversation.handled_by,
            "status": conversation.status,
            "agent": selectors.agent_display(agent),
        },
    )


def poll_headers(response: _R, tag: str) -> _R:
    response["ETag"] = tag
    response["Cache-Control"] = POLL_CACHE_CONTROL
    return response


def _version_tag(pk: Any, after_pk: Any, version: str | None) -> str:
    """The tag while the cache holds the conversation's poll version: it changes with every turn and
    transition (services.poll_version_bump), and differs per `after`."""
    digest = hashlib.sha256(repr(("v", str(pk), str(after_pk), version)).encode()).hexdigest()[:32]
    return f'"{digest}"'


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


def _if_none_match(request: HttpRequest | Request) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    # A weak validator (W/"...") names the same answer here: proxies may weaken a tag they compress.
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}
