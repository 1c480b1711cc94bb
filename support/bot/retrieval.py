"""Which articles go into Claude's prompt: all of them while they fit, else the best ones per question.

While every active article fits SUPPORT_KB_PROMPT_TOKENS, the whole knowledge base is sent, the same
bytes on every call, so it is read from the prompt cache. Past the budget, BM25 (rank-bm25's Okapi
variant) over each article's title, keywords and answer picks the SUPPORT_KB_RETRIEVAL_TOP_K best
articles for the question, as many as fit the budget.

The BM25 index is built once per process per knowledge-base version: a value in the shared cache that
the KnowledgeArticle save/delete signals replace (support.apps), so every worker rebuilds after an edit.
The articles' primary keys are part of the key too, for writes that bypass the signals.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache

from support.bot.knowledge import content_words, words
from support.bot.tokens import estimate_tokens

if TYPE_CHECKING:
    from rank_bm25 import BM25Okapi

VERSION_KEY = "support:kb:version"
#: Title and keywords say what an article is about; repeating them weighs them above the answer's words.
TITLE_WEIGHT = 3
KEYWORD_WEIGHT = 2
#: Per article: the search-result block's JSON and title around its answer.
ARTICLE_OVERHEAD_TOKENS = 20


@dataclass(frozen=True)
class Selection:
    articles: list[Any]
    #: True: the whole knowledge base, identical on every call (worth a cache breakpoint).
    whole: bool


def article_tokens(article: Any) -> int:
    return estimate_tokens(article.title) + estimate_tokens(article.answer) + ARTICLE_OVERHEAD_TOKENS


def prompt_articles(*, articles: Sequence[Any], question: str) -> Selection:
    """The articles to send with `question` (display order kept when all fit; best first otherwise)."""
    budget = settings.SUPPORT_KB_PROMPT_TOKENS
    index = index_for(articles)
    if index.total_tokens <= budget:
        return Selection(articles=list(articles), whole=True)
    chosen: list[Any] = []
    used = 0
    for position in index.top(question, k=settings.SUPPORT_KB_RETRIEVAL_TOP_K):
        cost = index.tokens[position]
        if used + cost <= budget:
            chosen.append(articles[position])
            used += cost
    return Selection(articles=chosen, whole=False)


def document_tokens(article: Any) -> list[str]:
    return (
        content_words(article.title) * TITLE_WEIGHT
        + words(article.keywords) * KEYWORD_WEIGHT
        + content_words(article.answer)
    )


class Index:
    """One version of the knowledge base: each article's size, and BM25 over the articles (built on first
    use, so a knowledge base that fits the budget never pays for it)."""

    def __init__(self, articles: Sequence[Any]) -> None:
        self.tokens = [article_tokens(article) for article in articles]
        self.total_tokens = sum(self.tokens)
        self._articles = list(articles)
        self._bm25: BM25Okapi | None = None
        #: term -> positions of the articles holding it: only those are scored for a question.
        self._postings: dict[str, list[int]] = {}
        self._built = threading.Lock()

    def _ranker(self) -> BM25Okapi | None:
        with self._built:
            if self._bm25 is None and self._articles:
                # Here, not at the top: rank_bm25 brings numpy (about 15 MB), which only a knowledge base past
                # SUPPORT_KB_PROMPT_TOKENS needs; every worker would carry it otherwise.
                from rank_bm25 import BM25Okapi

                self._bm25 = BM25Okapi([document_tokens(article) or ["-"] for article in self._articles])
                for position, frequencies in enumerate(self._bm25.doc_freqs):
                    for term in frequencies:
                        self._postings.setdefault(term, []).append(position)
            return self._bm25

    def top(self, question: str, *, k: int) -> list[int]:
        """Positions of the best `k` articles with a positive score, best first (the earlier wins a tie)."""
        query = list(dict.fromkeys(content_words(question)))
        bm25 = self._ranker()
        candidates = sorted({p for term in query for p in self._postings.get(term, ())})
        if bm25 is None or not candidates:
            return []
        import numpy as np  # loaded with rank_bm25 by _ranker above

        scores = np.asarray(bm25.get_batch_scores(query, candidates))
        # A stable sort on the negated scores keeps display order among equal scores.
        best = np.argsort(-scores, kind="stable")[:k]
        return [candidates[i] for i in best if scores[i] > 0]


_lock = threading.Lock()
_cached: dict[tuple[str, tuple[Any, ...]], Index] = {}


def kb_version() -> str:
    return str(cache.get(VERSION_KEY) or "0")


def kb_version_bump(**_: Any) -> None:
    """Signal receiver: an article changed, so every process's index is stale."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)


def index_for(articles: Sequence[Any]) -> Index:
    """This process's index of `articles`, rebuilt when the knowledge-base version or the articles change."""
    key = (kb_version(), tuple(article.pk for article in articles))
    with _lock:
        index = _cached.get(key)
    if index is None:
        index = Index(articles)
        with _lock:
            _cached.clear()  # only the current version is worth its memory
            _cached[key] = index
    return index
