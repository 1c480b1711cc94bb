"""Retrieval bench (issue 14): 2,000 generated articles, 50 fixed questions.

    .venv/bin/python bench/retrieval.py          # make bench-retrieval

Measures what support.bot.retrieval does on each chat turn once the knowledge base is past
SUPPORT_KB_PROMPT_TOKENS: the BM25 pick per question (index built once, as after an article edit, and
timed apart), the pick's size against the budget, and answer quality: the expected article in BM25's
top 3 for at least 90% of the questions in bench/retrieval_questions.json (committed, so the figure
is comparable from run to run). Prints each figure against its target, then PASS or FAIL (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "bench" / "retrieval_questions.json"
TARGET_P95_MS = 20.0
TARGET_TOP3 = 0.90


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="times each question is asked (default 10)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rezvo_support.settings")
    os.environ.setdefault("SECRET_KEY", "bench-retrieval")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from django.conf import settings

    from bench.retrieval_corpus import articles
    from support.bot import retrieval

    kb = articles()
    asked = json.loads(QUESTIONS.read_text())
    budget = settings.SUPPORT_KB_PROMPT_TOKENS
    total = sum(retrieval.article_tokens(a) for a in kb)
    started = time.perf_counter()
    index = retrieval.index_for(kb)
    index.top("warm up", k=1)  # BM25 is built on first use: time it here, apart from the questions
    build_ms = (time.perf_counter() - started) * 1000

    timings: list[float] = []
    largest = 0
    for _ in tqdm(range(args.rounds), desc="rounds", unit="round"):
        for item in asked:
            started = time.perf_counter()
            chosen = retrieval.prompt_articles(articles=kb, question=item["question"])
            timings.append((time.perf_counter() - started) * 1000)
            largest = max(largest, sum(retrieval.article_tokens(a) for a in chosen.articles))
    top3 = [item["expected"] in [kb[i].title for i in index.top(item["question"], k=3)] for item in asked]
    p95 = statistics.quantiles(timings, n=20)[-1]
    rate = sum(top3) / len(top3)
    checks = [
        (f"retrieval p95 {p95:.2f} ms (median {statistics.median(timings):.2f} ms)", p95 < TARGET_P95_MS),
        (f"largest pick {largest} tokens; budget {budget} (whole base {total})", largest <= budget < total),
        (f"right article in top 3: {sum(top3)}/{len(top3)} = {rate:.0%}", rate >= TARGET_TOP3),
    ]
    print(f"{len(kb)} articles, {len(asked)} questions x {args.rounds} rounds; index built in {build_ms:.0f} ms")
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    for item, hit in zip(asked, top3, strict=True):
        if not hit:
            print(f"  missed: {item['question']!r} -> expected {item['expected']!r}")
    passed = all(ok for _, ok in checks)
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
