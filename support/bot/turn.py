"""The chat proxy: one customer message in, one bot reply out, both stored, whatever happens in between.

    turn = chat_turn_begin(conversation=..., text=...)   # stores the customer's turn, reads all it needs
    for event in chat_turn_events(turn=turn):            # start, delta..., done (the stored reply)
        ...

`chat_turn_begin` does every read and the first write before anything is streamed, so a database
problem is still a clean JSON error. `chat_turn_events` streams the reply from Claude, or from the
offline knowledge-base responder when there is no API key, the daily budget is spent or Claude fails
before any text, and always stores the assistant turn: complete; partial with a closing line when
Claude's stream broke; or partial as far as it got when the client went away (GeneratorExit).
Every write goes through support.services. What Claude is told is built in support.bot.prompt, the
escalation rules are support.bot.rules, and the SDK client is support.bot.claude.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.utils import timezone

from support import business_hours, selectors, services
from support.bot import citations, claude, knowledge, prompt, retrieval, rules, scope
from support.bot.tokens import estimate_tokens
from support.db_retry import db_retry
from support.models import (
    Conversation,
    EscalationReason,
    KnowledgeArticle,
    Message,
    MessageOrigin,
    ModelPrice,
    Role,
)
from support.services import budget

logger = logging.getLogger(__name__)

# --- What the bot says when it has to -------------------------------------------------------
# {when}: when a person will reply, from the business hours (support.business_hours.handoff_phrase).
HANDOFF_TEXT = "I've passed this to our support team. {when}. You can also email us at {email}."
NO_ANSWER_TEXT = (
    "I'm not sure about that one, so I've passed your question to our support team. {when}. "
    "You can also email us at {email}."
)
#: The `error` event's message when the reply could not be stored (the client should send the turn again).
STORE_FAILED_TEXT = "Sorry, your message arrived but we could not save the reply. Please send it again."
CLOSING_LINE = (
    "\n\n(Sorry, my reply was cut off there. I've flagged this conversation so a member of our team can "
    "follow up with the rest.)"
)


# --- Budget ----------------------------------------------------------------------------------
def budget_reserve(*, system: str, messages: list[dict[str, str]]) -> budget.Reservation | None:
    """Reserve this call's worst case in today's budget (support.services.budget); None once the budget is spent."""
    tools = [dict(tool) for tool in prompt.tools()]
    tokens = budget.request_token_bound(system=system, messages=messages, tools=tools)
    micros = budget.call_worst_case_micros(model=settings.SUPPORT_CLAUDE_MODEL, input_tokens=tokens)
    return budget.daily_spend_reserve(micros=micros)


# --- One turn --------------------------------------------------------------------------------
class Responder(enum.Enum):
    CLAUDE = "claude"
    OFFLINE = "offline"  # no API key configured
    BUDGET = "budget"  # the daily budget is spent


@dataclass
class ChatTurn:
    conversation: Conversation
    user_message: Message
    question: str
    asks_for_human: bool
    responder: Responder
    articles: list[KnowledgeArticle]
    #: The business's support email and hours for hand-off messages (its BusinessProfile, else settings).
    venue: selectors.Venue | None = None
    system: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    #: This call's worst case, held in today's budget until the reply is stored (then settled).
    reservation: budget.Reservation | None = None
    #: The articles sent to Claude (support.bot.retrieval), and whether they are the whole knowledge base.
    knowledge: list[KnowledgeArticle] = field(default_factory=list)
    knowledge_whole: bool = True


@dataclass
class ChatResult:
    """What the `done` event reports: the stored reply and the conversation after it."""

    conversation: Conversation
    user_message: Message
    message: Message
    fallback: bool
    #: The articles the reply cited (the widget's "Sources").
    sources: list[KnowledgeArticle] = field(default_factory=list)


@dataclass
class ChatEvent:
    name: str  # "start" | "delta" | "done" | "error" (the reply could not be stored; text says why)
    user_message: Message | None = None
    text: str = ""
    result: ChatResult | None = None


def chat_turn_begin(*, conversation: Conversation, text: str) -> ChatTurn:
    """Store the customer's turn (flagged at once if they ask for a person), then gather the prompt."""
    asks_for_human = rules.customer_asks_for_human(text)
    [user_message] = services.message_log(
        conversation=conversation,
        turns=[services.Turn(role=Role.USER, content=text, priced=False, origin=MessageOrigin.PROXY)],
        is_escalation=asks_for_human,
        escalation_reason=EscalationReason.HUMAN_REQUESTED,
        escalation_detail=text[:500] if asks_for_human else "",
        actor_label=services.BOT,
        refresh=False,  # before Claude is called, every millisecond is the customer's wait
    )
    return _turn_prepare(conversation=conversation, user_message=user_message, asks_for_human=asks_for_human)


def chat_turn_resume(*, conversation: Conversation, user_message: Message) -> ChatTurn | ChatResult:
    """A same-key retry of a turn whose customer message is stored but whose reply was not confirmed: the
    stored reply when there is one (its key was never completed), else the turn to answer again."""
    reply = selectors.message_reply_to(message=user_message)
    if reply is not None:
        conversation.refresh_from_db()
        return ChatResult(conversation=conversation, user_message=user_message, message=reply, fallback=False)
    asks_for_human = rules.customer_asks_for_human(user_message.content)
    return _turn_prepare(conversation=conversation, user_message=user_message, asks_for_human=asks_for_human)


def _turn_prepare(*, conversation: Conversation, user_message: Message, asks_for_human: bool) -> ChatTurn:
    text = user_message.content
    # Only the articles for this conversation's verified venue and audience (support.bot.scope).
    articles = scope.articles_for_conversation(selectors.knowledge_article_list_active(), conversation)
    turn = ChatTurn(
        conversation=conversation,
        user_message=user_message,
        question=text,
        asks_for_human=asks_for_human,
        responder=Responder.OFFLINE,
        articles=articles,
    )
    turn.venue = venue = selectors.venue_for(business_id=conversation.business_id)
    if claude.claude_configured():
        selection = retrieval.prompt_articles(articles=articles, question=text)
        turn.knowledge, turn.knowledge_whole = selection.articles, selection.whole
        turn.system = prompt.system_prompt(articles=selection.articles, email=venue.support_email)
        turn.messages = prompt.history_messages(conversation=conversation)
        turn.reservation = budget_reserve(system=turn.system, messages=turn.messages)
        turn.responder = Responder.CLAUDE if turn.reservation is not None else Responder.BUDGET
    return turn


@dataclass
class _Reply:
    """What has been said so far, and why, while the reply streams."""

    started: float
    parts: list[str] = field(default_factory=list)
    first_token_ms: int | None = None
    claude: claude.ClaudeReply | None = None
    fallback: bool = False
    unavailable: bool = False
    partial: bool = False
    disconnected: bool = False
    no_answer: bool = False
    tool_reason: str | None = None
    cited: list[KnowledgeArticle] = field(default_factory=list)
    #: (model, price_resolve() for it), looked up while Claude streams.
    price: tuple[str, tuple[ModelPrice | None, bool]] | None = None

    def add(self, text: str) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = _ms_since(self.started)
        self.parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _ms_since(started: float) -> int:
    return max(int((time.monotonic() - started) * 1000), 0)


def chat_turn_events(*, turn: ChatTurn, on_stored: Callable[[ChatResult], None] | None = None) -> Generator[ChatEvent]:
    """start, delta..., then `done` or `error`. The assistant turn is stored before `done` (retried while the
    database is unavailable, up to SUPPORT_CHAT_STORE_RETRY_S), and also when the consumer stops early
    (client gone): then `on_stored` is the only one to hear about it. `error` means it could not be stored."""
    yield ChatEvent("start", user_message=turn.user_message)
    reply = _Reply(started=time.monotonic())
    result: ChatResult | None = None
    try:
        if turn.responder is Responder.CLAUDE:
            yield from _from_claude(turn, reply)
        else:
            yield from _from_knowledge_base(turn, reply)
    except GeneratorExit:
        reply.disconnected = True
        raise
    finally:
        deadline = time.monotonic() + settings.SUPPORT_CHAT_STORE_RETRY_S
        result = _store_or_none(turn, reply, deadline=deadline)
        try:
            if result is not None and on_stored is not None:
                on_stored(result)
            if result is not None and reply.disconnected:  # no `done` will be sent: count the turn now
                _counters_add(result, deadline=deadline)
        finally:
            _budget_settle(turn, result)
    if result is None:
        yield ChatEvent("error", text=STORE_FAILED_TEXT)
        return
    try:
        yield ChatEvent("done", result=result)
    finally:
        # The conversation's counters (turns, tokens, cost) are added once `done` is on its way: the
        # customer does not wait for them. Also when the client leaves right at `done`.
        _counters_add(result, deadline=time.monotonic() + settings.SUPPORT_CHAT_STORE_RETRY_S)


def _store_or_none(turn: ChatTurn, reply: _Reply, *, deadline: float) -> ChatResult | None:
    try:
        return _store(turn, reply, deadline=deadline)
    except Exception:
        # Claude's reply (and its cost) is lost: say so loudly, with the figures needed to reconcile it.
        usage = (reply.claude.input_tokens, reply.claude.output_tokens) if reply.claude else (0, 0)
        logger.exception("could not store the reply of conversation %s (tokens in/out %s)", turn.conversation.pk, usage)
        return None


def _counters_add(result: ChatResult, *, deadline: float) -> None:
    try:
        db_retry(
            lambda: services.conversation_counters_add(conversation=result.conversation, messages=[result.message]),
            deadline=deadline,
            what="adding the reply to the conversation's counters",
        )
    except Exception:
        # The reply is stored, so `conversation_recount` (and the rollup rebuild) restores the figures.
        logger.exception("could not add the reply to the counters of conversation %s", result.conversation.pk)


def _budget_settle(turn: ChatTurn, result: ChatResult | None) -> None:
    """The stored turn's real cost replaces the reservation (0 when Claude failed); a turn that could not
    be stored keeps its worst case, since Claude may have billed it."""
    if turn.reservation is not None:
        cost = result.message.cost_micros if result is not None else turn.reservation.micros
        budget.daily_spend_settle(reservation=turn.reservation, micros=cost)


def _from_claude(turn: ChatTurn, reply: _Reply) -> Iterator[ChatEvent]:
    try:
        stream = claude.reply_stream(
            system=prompt.system_blocks(prompt.instructions(email=turn.venue.support_email if turn.venue else None)),
            tools=prompt.tools(),
            messages=prompt.message_params(
                turn.messages, knowledge=prompt.knowledge_blocks(articles=turn.knowledge, cached=turn.knowledge_whole)
            ),
        )
    except Exception as exc:  # noqa: BLE001 - whatever stopped Claude (after the SDK's retries), answer offline
        logger.warning("Claude unavailable for conversation %s: %s", turn.conversation.pk, _describe(exc))
        reply.unavailable = True
        yield from _from_knowledge_base(turn, reply)
        return
    reply.claude = stream
    try:
        yield from _claude_deltas(stream, reply)
    except Exception as exc:  # noqa: BLE001 - error event, dropped connection, stall: keep what arrived
        yield from _after_broken_stream(turn, reply, exc)
        return
    finally:
        stream.close()
    yield from _after_complete_stream(turn, reply, stream)


def _claude_deltas(stream: claude.ClaudeReply, reply: _Reply) -> Iterator[ChatEvent]:
    for text in stream.text_deltas():
        reply.add(text)
        yield ChatEvent("delta", text=text)
        if reply.price is None:
            # The first delta is on its way; look the price up while Claude writes the next one rather
            # than after the last, when the customer is waiting for `done`.
            model = _reply_model(stream)
            reply.price = (model, services.price_resolve(model=model, at=timezone.now()))


def _after_broken_stream(turn: ChatTurn, reply: _Reply, exc: Exception) -> Iterator[ChatEvent]:
    logger.warning(
        "Claude stream broke for conversation %s after %d characters: %s",
        turn.conversation.pk,
        len(reply.text),
        _describe(exc),
    )
    reply.unavailable = True
    if not reply.text:
        reply.claude = None  # nothing of Claude's is kept: the offline answer is the whole turn
        yield from _from_knowledge_base(turn, reply)
        return
    reply.partial = True
    reply.add(CLOSING_LINE)
    yield ChatEvent("delta", text=CLOSING_LINE)


def _after_complete_stream(turn: ChatTurn, reply: _Reply, stream: claude.ClaudeReply) -> Iterator[ChatEvent]:
    reply.cited = citations.cited_articles(sources=stream.cited_sources, articles=turn.knowledge)
    tool = next((call for call in stream.tool_calls if call.name == prompt.ESCALATE_TOOL_NAME), None)
    if tool is not None:
        reply.tool_reason = str(tool.input.get("reason", ""))[:500]
    if not reply.text:
        # Claude only called the tool, or said nothing: the customer still gets an answer. Claude's usage
        # is kept on the turn either way: it was billed.
        if tool is None:
            yield from _from_knowledge_base(turn, reply)
            return
        text = _format(HANDOFF_TEXT, turn)
        reply.add(text)
        yield ChatEvent("delta", text=text)
        return
    if tool is not None or turn.asks_for_human:
        # Claude's own words say a person will follow up; the customer is also told when.
        line = f"\n\n{_handoff_when(turn)}."
        reply.add(line)
        yield ChatEvent("delta", text=line)


def _from_knowledge_base(turn: ChatTurn, reply: _Reply) -> Iterator[ChatEvent]:
    reply.fallback = True
    if turn.asks_for_human:
        text = _format(HANDOFF_TEXT, turn)
    else:
        match = knowledge.best_match(turn.articles, turn.question)
        if match is not None:
            text = match.article.answer
            reply.cited = [cast(KnowledgeArticle, match.article)]  # best_match returns one of turn.articles
        else:
            text = _format(NO_ANSWER_TEXT, turn)
            reply.no_answer = True
    reply.add(text)
    yield ChatEvent("delta", text=text)


def _reply_model(stream: claude.ClaudeReply) -> str:
    return stream.model or settings.SUPPORT_CLAUDE_MODEL


def _format(template: str, turn: ChatTurn) -> str:
    email = turn.venue.support_email if turn.venue else settings.SUPPORT_EMAIL
    return template.format(email=email, when=_handoff_when(turn))


def _handoff_when(turn: ChatTurn) -> str:
    return business_hours.handoff_phrase(timezone.now(), turn.venue.hours if turn.venue else None)


def _describe(exc: BaseException) -> str:
    # Type and status only: SDK messages can echo request details, and logs are not the place for them.
    if isinstance(exc, claude.ClaudeDeadlineExceeded):
        return f"{type(exc).__name__}: {exc}"  # our own message, no request details
    status = getattr(exc, "status_code", None)
    kind = getattr(exc, "type", None)
    parts = [type(exc).__name__]
    if status is not None:
        parts.append(f"status={status}")
    if isinstance(kind, str):
        parts.append(f"type={kind}")
    return " ".join(parts)


def _escalation(turn: ChatTurn, reply: _Reply) -> tuple[str, str] | None:
    """The first rule that applies to this reply, as (reason, detail)."""
    if reply.tool_reason is not None:
        return EscalationReason.BOT_TOOL, reply.tool_reason
    if reply.unavailable:
        return EscalationReason.CLAUDE_UNAVAILABLE, "Claude failed; the reply was " + (
            "cut off" if reply.partial else "answered from the knowledge base"
        )
    if turn.responder is Responder.BUDGET:
        return EscalationReason.BUDGET, "The daily Claude budget was spent; answered from the knowledge base."
    if reply.no_answer:
        return EscalationReason.NO_ANSWER, "No knowledge-base article matched the question."
    if rules.mentions_support_email(reply.text, turn.venue.support_email if turn.venue else None):
        return EscalationReason.SUPPORT_EMAIL, "The reply gave out the support email."
    return None


def _store(turn: ChatTurn, reply: _Reply, *, deadline: float) -> ChatResult:
    assistant = _grounded(turn, reply, _assistant_turn(reply))
    escalation = _escalation(turn, reply)
    built: list[Message] = []

    def insert() -> None:
        if not built:
            flagged = escalation is not None
            conversation = turn.conversation
            built.extend(services.messages_build(conversation=conversation, turns=[assistant], is_escalation=flagged))
        # One INSERT, alone in its transaction: once the row has its key it is stored, so a retry never doubles it.
        if built[0].pk is None:
            services.messages_store(
                conversation=turn.conversation, messages=built, actor_label=services.BOT, refresh=False, counters=False
            )

    db_retry(insert, deadline=deadline, what="storing the reply")
    if escalation is not None:
        db_retry(
            lambda: services.conversation_escalate(
                conversation=turn.conversation, reason=escalation[0], detail=escalation[1], actor_label=services.BOT
            ),
            deadline=deadline,
            what="flagging the conversation",
        )
    return ChatResult(
        conversation=turn.conversation,
        user_message=turn.user_message,
        message=built[0],
        fallback=reply.fallback,
        sources=reply.cited,
    )


def _grounded(turn: ChatTurn, reply: _Reply, assistant: services.Turn) -> services.Turn:
    """The turn with its citations; Claude's complete answer to a product question citing nothing is ungrounded."""
    ungrounded = (
        reply.claude is not None
        and not (reply.fallback or reply.partial)
        and citations.is_ungrounded(
            question=turn.question,
            reply_text=reply.text,
            cited=reply.cited,
            handed_over=reply.tool_reason is not None or turn.asks_for_human,
        )
    )
    ids = tuple(str(article.pk) for article in reply.cited)
    return dataclasses.replace(assistant, cited_article_ids=ids, is_ungrounded=ungrounded)


def _assistant_turn(reply: _Reply) -> services.Turn:
    latency_ms = _ms_since(reply.started)
    text = reply.text
    stream = reply.claude
    if stream is None:
        assistant = services.Turn(
            role=Role.ASSISTANT,
            content=text,
            priced=False,
            is_partial=reply.disconnected,
            latency_ms=latency_ms,
            first_token_ms=reply.first_token_ms,
            origin=MessageOrigin.PROXY,
        )
    else:
        output_tokens = stream.output_tokens
        if not stream.usage_final:
            # The final usage never came (stream broke or client left): estimate what Claude generated,
            # which is not our own closing line.
            generated = text.removesuffix(CLOSING_LINE) if reply.partial else text
            output_tokens = max(output_tokens, estimate_tokens(generated))
        model = _reply_model(stream)
        assistant = services.Turn(
            role=Role.ASSISTANT,
            content=text,
            model=model,
            resolved_price=reply.price[1] if reply.price is not None and reply.price[0] == model else None,
            input_tokens=stream.input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=stream.cache_read_tokens,
            cache_write_tokens=stream.cache_write_tokens,
            cache_write_1h_tokens=stream.cache_write_1h_tokens,
            is_partial=reply.partial or reply.disconnected,
            is_truncated=stream.stop_reason == "max_tokens",
            latency_ms=latency_ms,
            first_token_ms=reply.first_token_ms,
            origin=MessageOrigin.PROXY,
        )
    return assistant


def replay_events(*, data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A completed turn's stored `done` data as a short stream: start, one delta with the full text, done."""
    yield "start", {"user_message_id": data.get("user_message_id", "")}
    if data.get("text"):
        yield "delta", {"text": data["text"]}
    yield "done", data
