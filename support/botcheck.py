"""Bot checks: ask the bot a saved question the way the chat proxy would, and judge the reply.

The question goes through the chat proxy's own responders (support.bot.turn: Claude with the same system
prompt and tools, or the offline knowledge-base responder) and escalation rules, but nothing is stored as
a conversation, no daily budget is reserved, and nothing enters the queue or the analytics: a check is
not a customer. Its Claude cost is priced like a turn and kept on the run (services.botcheck).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from support import pricing, selectors
from support.bot import claude, prompt, retrieval, rules, scope
from support.bot import turn as chat
from support.models import (
    BotCheck,
    BotCheckEscalation,
    BotCheckResponder,
    Conversation,
    EscalationReason,
    Message,
    Role,
)
from support.services.prices import price_resolve


@dataclass
class CheckReply:
    """What the bot answered one check's question, and what it cost."""

    text: str
    escalation_reason: str = ""
    #: The articles the reply cited (as strings of their ids); empty when the responder gives no citations.
    cited_article_ids: list[str] = field(default_factory=list)
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    latency_ms: int = 0

    @property
    def escalated(self) -> bool:
        return bool(self.escalation_reason)


def responder() -> str:
    """Who answers checks now: Claude when an API key is configured, else the offline responder."""
    return BotCheckResponder.CLAUDE if claude.claude_configured() else BotCheckResponder.OFFLINE


def botcheck_ask(question: str) -> CheckReply:
    """The bot's reply to `question` as a first message, from the configured responder, stored nowhere."""
    started = time.monotonic()
    anonymous = Conversation()  # an unsaved stand-in: a visitor with no verified venue sees the global articles
    articles = scope.articles_for_conversation(selectors.knowledge_article_list_active(), anonymous)
    # Unsaved stand-ins: the responders read the question and articles, never the database rows.
    turn = chat.ChatTurn(
        conversation=anonymous,
        user_message=Message(role=Role.USER, content=question),
        question=question,
        asks_for_human=rules.customer_asks_for_human(question),
        responder=chat.Responder.OFFLINE,
        articles=articles,
    )
    if responder() == BotCheckResponder.CLAUDE:
        turn.responder = chat.Responder.CLAUDE  # no budget reservation: checks are not customer spend
        # The same pick of articles a customer's first question gets (support.bot.retrieval), sent as citable
        # search results, so "must cite" checks what Claude really cites.
        selection = retrieval.prompt_articles(articles=articles, question=question)
        turn.knowledge, turn.knowledge_whole = selection.articles, selection.whole
        turn.system = prompt.system_prompt(articles=selection.articles)
        turn.messages = [{"role": Role.USER, "content": question}]
    reply = chat._Reply(started=started)
    events = chat._from_claude(turn, reply) if turn.responder is chat.Responder.CLAUDE else None
    for _event in events or chat._from_knowledge_base(turn, reply):
        pass
    assistant = chat._grounded(turn, reply, chat._assistant_turn(reply))
    escalation = chat._escalation(turn, reply)
    reason = escalation[0] if escalation else (EscalationReason.HUMAN_REQUESTED if turn.asks_for_human else "")
    return CheckReply(
        text=reply.text,
        escalation_reason=reason,
        cited_article_ids=[str(article_id) for article_id in assistant.cited_article_ids],
        model=assistant.model,
        input_tokens=assistant.input_tokens,
        output_tokens=assistant.output_tokens,
        cost_micros=_cost(assistant),
        latency_ms=int((time.monotonic() - started) * 1000),
    )


def _cost(assistant: Any) -> int:
    if not assistant.priced or not assistant.model:
        return 0
    price, _fallback = price_resolve(model=assistant.model, at=timezone.now())
    return pricing.cost_micros(price, assistant)


_SPACES = re.compile(r"\s+")


def _normalised(text: str) -> str:
    return _SPACES.sub(" ", text.lower()).strip()


def phrases(text: str) -> list[str]:
    """A check's phrase list: one per line, blank lines skipped."""
    return [_normalised(line) for line in text.splitlines() if line.strip()]


def botcheck_evaluate(*, check: BotCheck, reply: CheckReply) -> list[str]:
    """Each of the check's expectations the reply breaks, in words; empty when it passes."""
    failures: list[str] = []
    if check.escalation == BotCheckEscalation.MUST and not reply.escalated:
        failures.append("Expected an escalation; the bot answered itself.")
    if check.escalation == BotCheckEscalation.MUST_NOT and reply.escalated:
        failures.append(f"Expected no escalation; the bot escalated ({reply.escalation_reason}).")
    said = _normalised(reply.text)
    failures += [f"Does not mention “{phrase}”." for phrase in phrases(check.must_mention) if phrase not in said]
    failures += [f"Mentions “{phrase}”." for phrase in phrases(check.must_not_mention) if phrase in said]
    if check.must_cite_id is not None and str(check.must_cite_id) not in reply.cited_article_ids:
        cited = ", ".join(reply.cited_article_ids) or "none"
        failures.append(f"Does not cite article {check.must_cite_id} (cited: {cited}).")
    return failures
