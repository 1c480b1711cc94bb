"""The chat bot: one customer turn in, one stored reply out (support.bot.turn), from Claude or offline.

    handoff.py    a customer's turn while a person owns the conversation: stored, never answered by the bot
    turn.py       the chat turn: budget, Claude call, streaming, offline fallback, storing the reply
    prompt.py     what Claude is told: instructions, knowledge base, tool, history, prompt caching
    rules.py      escalation rules applied besides Claude's own escalate_to_human tool
    claude.py     the anthropic SDK client (the only module that loads the SDK)
    knowledge.py  the offline responder's article selection, and the sample articles
    tokens.py     token estimates and bounds without a tokenizer

Below: what the chat view (support.api.chat) uses.
"""

from __future__ import annotations

from support.bot.handoff import bot_is_silent, human_done_data, human_turn_store
from support.bot.turn import (
    STORE_FAILED_TEXT,
    ChatEvent,
    ChatResult,
    ChatTurn,
    chat_turn_begin,
    chat_turn_events,
    chat_turn_resume,
    replay_events,
)

__all__ = [
    "STORE_FAILED_TEXT",
    "ChatEvent",
    "ChatResult",
    "ChatTurn",
    "bot_is_silent",
    "chat_turn_begin",
    "chat_turn_events",
    "chat_turn_resume",
    "human_done_data",
    "human_turn_store",
    "replay_events",
]
