"""A customer's turn while a person owns the conversation (handled_by=human): stored, never answered by
the bot. No Claude call, no budget reservation, no cost; the answer says who will reply."""

from __future__ import annotations

from typing import Any

from support import selectors, services
from support.models import Conversation, HandledBy, Message, MessageOrigin, Role
from support.services.notifications import CUSTOMER_REPLIED, notification_publish


def bot_is_silent(conversation: Conversation) -> bool:
    """Whether a person owns the conversation, so the bot must not answer."""
    return conversation.handled_by == HandledBy.HUMAN


def human_turn_store(*, conversation: Conversation, text: str) -> Message:
    """Store the customer's turn (unpriced, like every customer turn of the chat proxy)."""
    [user_message] = services.message_log(
        conversation=conversation,
        turns=[services.Turn(role=Role.USER, content=text, priced=False, origin=MessageOrigin.PROXY)],
        actor_label=services.BOT,
    )
    notification_publish(event=CUSTOMER_REPLIED, conversation=conversation, data={"message_id": str(user_message.pk)})
    return user_message


def human_done_data(*, conversation: Conversation, user_message: Message) -> dict[str, Any]:
    """The chat's answer for a turn a person will answer: the JSON body, and the `done` event's data."""
    return {
        "handled_by": HandledBy.HUMAN.value,
        "user_message_id": str(user_message.pk),
        "agent": selectors.agent_display(selectors.conversation_agent(conversation=conversation)),
        "text": "",
    }
