"""Knowledge gaps (issue 14): the questions the bot could not answer, grouped by similarity.

A question is a gap when, in a conversation started in the window:
- the bot escalated because the knowledge base had no answer (`no_answer`: the offline responder found
  no article) or Claude handed over (`bot_tool`);
- the customer gave a thumbs-down;
- Claude answered a product question without citing an article (Message.is_ungrounded).
The question is the customer's turn just before the failing reply (the first turn when none is known).

Questions are grouped by similarity, not exact text: each is reduced to its meaningful words (stemmed, no
stop words or small talk) and joins the first group whose words match at least SUPPORT_GAP_SIMILARITY
(rapidfuzz's token_set_ratio). Groups rank by tickets, then cost. A question drops off once an article
saved after it was asked answers it (the offline responder's match), so writing the article closes the gap.
Reads are bounded by MAX_GAP_CONVERSATIONS, newest first.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from support.bot import knowledge
from support.models import Conversation, EscalationReason, KnowledgeArticle, Message, Rating, Role
from support.selectors.scope import conversation_scope

MAX_GAP_CONVERSATIONS = 2000
GAP_ESCALATIONS = (EscalationReason.NO_ANSWER, EscalationReason.BOT_TOOL)


class GapReason:
    NO_ANSWER = "no_answer"
    BOT_TOOL = "bot_tool"
    THUMBS_DOWN = "thumbs_down"
    UNGROUNDED = "ungrounded"


REASON_LABELS = {
    GapReason.NO_ANSWER: "no article matched",
    GapReason.BOT_TOOL: "bot handed over",
    GapReason.THUMBS_DOWN: "thumbs-down",
    GapReason.UNGROUNDED: "answered without a source",
}


@dataclass
class GapQuestion:
    conversation: Conversation
    question: str
    asked_at: datetime
    reason: str
    words: str = ""


@dataclass
class Gap:
    key: str
    words: str
    questions: list[GapQuestion] = field(default_factory=list)

    @property
    def conversations(self) -> list[Conversation]:
        """The tickets behind the group, newest first, each once."""
        seen: dict[Any, Conversation] = {}
        for item in self.questions:
            seen.setdefault(item.conversation.pk, item.conversation)
        return list(seen.values())

    @property
    def count(self) -> int:
        return len(self.conversations)

    @property
    def cost_micros(self) -> int:
        return sum(conversation.cost_micros for conversation in self.conversations)

    @property
    def label(self) -> str:
        """The question asked most often in the group (the newest among equals)."""
        return Counter(item.question for item in self.questions).most_common(1)[0][0]

    @property
    def texts(self) -> list[str]:
        return list(dict.fromkeys(item.question for item in self.questions))

    @property
    def reasons(self) -> list[str]:
        return [REASON_LABELS[r] for r in dict.fromkeys(item.reason for item in self.questions)]


def gap_key(words: str) -> str:
    return hashlib.sha256(words.encode()).hexdigest()[:12]


# --- Reads -----------------------------------------------------------------------------------
def _candidates(start: datetime, end: datetime, viewer: Any) -> tuple[dict[Any, Conversation], dict[Any, list[Any]]]:
    """Conversations with a gap in the window that `viewer` may see (StaffScope), and the ungrounded replies
    in each."""
    window = {"created_at__gte": start, "created_at__lt": end}
    conversations = Conversation.objects.all()
    if viewer is not None:
        conversations = conversation_scope(conversations, user=viewer)
    escalated = conversations.filter(escalated=True, escalation_reason__in=GAP_ESCALATIONS, **window)
    rated_down = conversations.filter(rating=Rating.DOWN, **window)
    ungrounded: dict[Any, list[Any]] = {}
    replies = Message.objects.filter(is_ungrounded=True, **window).order_by("-created_at")
    for conversation_id, message_id in replies.values_list("conversation_id", "pk")[:MAX_GAP_CONVERSATIONS]:
        ungrounded.setdefault(conversation_id, []).append(message_id)
    found = {
        c.pk: c
        for c in [
            *escalated.order_by("-created_at")[:MAX_GAP_CONVERSATIONS],
            *rated_down.order_by("-created_at")[:MAX_GAP_CONVERSATIONS],
        ]
    }
    missing = [pk for pk in ungrounded if pk not in found]
    if missing:
        found.update({c.pk: c for c in conversations.filter(pk__in=missing)})
    return found, {pk: replies for pk, replies in ungrounded.items() if pk in found}


def _turns(conversations: Iterable[Any]) -> dict[Any, list[Message]]:
    by_conversation: dict[Any, list[Message]] = {}
    rows = Message.objects.filter(conversation_id__in=list(conversations)).order_by("created_at", "pk")
    for message in rows.only("pk", "conversation_id", "role", "content", "created_at", "is_escalation"):
        by_conversation.setdefault(message.conversation_id, []).append(message)
    return by_conversation


def _question_before(turns: Sequence[Message], anchor: Any) -> Message | None:
    """The customer's last turn before the assistant turn `anchor` (a pk), else their first turn."""
    asked: Message | None = None
    for turn in turns:
        if turn.pk == anchor:
            break
        if turn.role == Role.USER:
            asked = turn
    return asked or next((t for t in turns if t.role == Role.USER), None)


def _anchors(conversation: Conversation, turns: Sequence[Message], ungrounded: list[Any]) -> list[tuple[Any, str]]:
    """(assistant turn pk or None, reason) for each failure in the conversation."""
    anchors: list[tuple[Any, str]] = [(pk, GapReason.UNGROUNDED) for pk in ungrounded]
    if conversation.escalated and conversation.escalation_reason in GAP_ESCALATIONS:
        flagged = [t.pk for t in turns if t.role == Role.ASSISTANT and t.is_escalation]
        anchors.append((flagged[-1] if flagged else None, str(conversation.escalation_reason)))
    if conversation.rating == Rating.DOWN:
        anchors.append((conversation.rated_message_id, GapReason.THUMBS_DOWN))
    return anchors


def gap_questions(*, start: datetime, end: datetime, viewer: Any = None) -> list[GapQuestion]:
    """Every failed question in conversations started in [start, end), newest first, not yet answered by
    an article saved since; with a staff `viewer`, only in the businesses they may see."""
    conversations, ungrounded = _candidates(start, end, viewer)
    turns = _turns(conversations)
    questions: list[GapQuestion] = []
    for pk, conversation in conversations.items():
        for anchor, reason in _anchors(conversation, turns.get(pk, []), ungrounded.get(pk, [])):
            asked = _question_before(turns.get(pk, []), anchor)
            if asked is None:
                continue
            words = " ".join(sorted(set(knowledge.content_words(asked.content))))
            if words:
                questions.append(GapQuestion(conversation, asked.content, asked.created_at, reason, words))
    questions.sort(key=lambda item: item.asked_at, reverse=True)
    return _unanswered(questions)


def _unanswered(questions: list[GapQuestion]) -> list[GapQuestion]:
    """Questions that no article saved after they were asked now answers."""
    if not questions:
        return questions
    oldest = min(item.asked_at for item in questions)
    recent = list(KnowledgeArticle.objects.filter(active=True, updated_at__gt=oldest).order_by("order", "title", "pk"))
    if not recent:
        return questions
    return [
        item
        for item in questions
        if knowledge.best_match([a for a in recent if a.updated_at > item.asked_at], item.question) is None
    ]


def gap_list(*, start: datetime, end: datetime, viewer: Any = None) -> list[Gap]:
    """Similar questions grouped, the most tickets first, then the most cost."""
    from rapidfuzz import fuzz, process  # here: only the gaps pages group questions; workers need it rarely

    groups: list[Gap] = []
    for item in gap_questions(start=start, end=end, viewer=viewer):
        found = process.extractOne(
            item.words,
            [group.words for group in groups],
            scorer=fuzz.token_set_ratio,
            score_cutoff=settings.SUPPORT_GAP_SIMILARITY,
        )
        if found is None:
            groups.append(Gap(key=gap_key(item.words), words=item.words, questions=[item]))
        else:
            groups[found[2]].questions.append(item)
    groups.sort(key=lambda group: (-group.count, -group.cost_micros))
    return groups


def gap_get(*, key: str, start: datetime, end: datetime, viewer: Any = None) -> Gap | None:
    return next((group for group in gap_list(start=start, end=end, viewer=viewer) if group.key == key), None)


def gap_staff_replies(*, gap: Gap, limit: int = 5) -> list[str]:
    """What people on the team told these customers (agent turns), newest first, each once."""
    ids = [conversation.pk for conversation in gap.conversations]
    replies = Message.objects.filter(conversation_id__in=ids, role=Role.AGENT).order_by("-created_at")
    return list(dict.fromkeys(replies.values_list("content", flat=True)[: limit * 4]))[:limit]


def gap_article_draft(*, gap: Gap) -> dict[str, str]:
    """The article form's initial values: a title, keywords from the group's commonest words, and the
    customers' questions and staff replies to write the answer from."""
    counts = Counter(word for item in gap.questions for word in item.words.split())
    keywords = ", ".join(word for word, _ in counts.most_common(6))
    lines = ["Customers asked:", *[f"- {text[:300]}" for text in gap.texts[:10]]]
    replies = gap_staff_replies(gap=gap)
    if replies:
        lines += ["", "Our team replied:", *[f"- {reply[:500]}" for reply in replies]]
    return {"title": gap.label[:200], "keywords": keywords[:1000], "answer": "\n".join(lines)}
