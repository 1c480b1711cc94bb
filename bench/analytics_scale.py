"""How GET /api/support/analytics scales with data: 10k vs 1M messages, side by side in one run.

Each size runs in its own process on a fresh temporary SQLite database: migrate, seed conversations
and messages with bulk_create, build the daily rollups through the rebuild path
(services.rollups_rebuild, as `manage.py rebuild_rollups` does), then time the endpoint through the
whole Django/DRF stack. Targets (issue 4): the 1M/10k ratio under 2 and under 150 ms at 1M.

    .venv/bin/python bench/analytics_scale.py                    # 10k and 1M (make bench-analytics)
    .venv/bin/python bench/analytics_scale.py --sizes 2000 50000 # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MESSAGES_PER_CONVERSATION = 4
SPREAD_DAYS = 120  # seeded conversations start over the last 120 days
QUESTIONS = [f"question number {i} about bookings and billing" for i in range(400)]
TARGET_RATIO = 2.0
TARGET_MS = 150.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- Worker: one size, one database ----------------------------------------------------------
def _conversation(rng: random.Random, weights: list[float], now: datetime) -> Any:
    from support.models import Conversation

    created = now - timedelta(seconds=rng.randint(0, SPREAD_DAYS * 86400 - 1))
    question = rng.choices(QUESTIONS, weights)[0]
    escalated = rng.random() < 0.3
    status = "auto_resolved"
    escalated_at = closed_at = None
    if escalated:
        escalated_at = created + timedelta(minutes=2)
        status = rng.choice(["needs_review", "open", "in_progress", "closed", "closed"])
        if status == "closed":
            closed_at = escalated_at + timedelta(minutes=rng.randint(5, 4000))
    return Conversation(
        source=rng.choice(["web", "web", "app_owner", "app_diner", "dashboard"]),
        status=status,
        escalated=escalated,
        escalation_reason=rng.choice(["support_email", "human_requested", "widget_flag"]) if escalated else "",
        escalated_at=escalated_at,
        closed_at=closed_at,
        summary=question,
        question_key=question,
        message_count=MESSAGES_PER_CONVERSATION,
        total_input_tokens=2 * 500,
        total_output_tokens=2 * 300,
        cost_micros=2 * 2000,
        token_hash="0" * 64,
        created_at=created,
    )


def _turns(rng: random.Random, conversations: list[Any]) -> list[Any]:
    from support.models import Message

    turns = []
    for conversation in conversations:
        model = "claude-sonnet-4-5" if rng.random() < 0.2 else "claude-haiku-4-5"
        for step in range(MESSAGES_PER_CONVERSATION):
            user = step % 2 == 0
            turns.append(
                Message(
                    conversation_id=conversation.pk,
                    role="user" if user else "assistant",
                    content="How do I change my booking?" if user else "Open it in your dashboard.",
                    model=model,
                    input_tokens=500 if user else 0,
                    output_tokens=0 if user else 300,
                    cost_micros=500 if user else 1500,
                    created_at=conversation.created_at + timedelta(seconds=30 * step),
                )
            )
    return turns


def _seed_rows(messages: int) -> None:
    """Conversations and their messages in batches of 5000, the same rows for the same size every run."""
    from django.utils import timezone

    from support.models import Conversation, Message

    rng = random.Random(42)
    weights = [1 / (rank + 1) for rank in range(len(QUESTIONS))]  # Zipf-like: a few questions dominate
    now = timezone.now()
    conversations = messages // MESSAGES_PER_CONVERSATION
    batch = 5000
    seeded = 0
    while seeded < conversations:
        size = min(batch, conversations - seeded)
        made = Conversation.objects.bulk_create([_conversation(rng, weights, now) for _ in range(size)])
        Message.objects.bulk_create(_turns(rng, made), batch_size=2500)
        seeded += size
        log(f"  [{messages:,}] seeded {seeded * MESSAGES_PER_CONVERSATION:,}/{messages:,} messages")


def worker(messages: int, database: str) -> dict[str, Any]:
    _setup_django(database)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from support import services
    from support.models import Message

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _seed_rows(messages)
    seed_s = time.perf_counter() - started

    started = time.perf_counter()
    result = services.rollups_rebuild(
        batch_size=5000,
        progress=lambda done, total: (
            log(f"  [{messages:,}] rollups: {done:,}/{total:,} conversations")
            if done % 50000 < 5000 or done == total
            else None
        ),
    )
    rebuild_s = time.perf_counter() - started

    get_user_model().objects.create_user("bench", is_staff=True)
    return {
        "messages": Message.objects.count(),
        "conversations": result.conversations,
        "rollup_rows": result.rows,
        "seed_s": seed_s,
        "rebuild_s": rebuild_s,
    }


def _setup_django(database: str) -> None:
    os.environ.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
            "ALLOWED_HOSTS": "testserver",
            "SECURE_SSL_REDIRECT": "false",
            "SQLITE_PATH": database,
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("MONGODB_URI", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rezvo_support.settings")
    sys.path.insert(0, str(ROOT))
    import warnings

    import django

    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic: the API serves no files
    django.setup()


def measure(databases: list[str], repeat: int, rounds: int = 6) -> dict[str, Any]:
    """Time the endpoint on each database in turn, round after round, in one process.

    Interleaving the sizes means a busy moment on a shared machine slows both, not just one,
    so the ratio stays honest.
    """
    _setup_django(databases[0])
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.test import APIClient

    client = APIClient()
    samples: dict[str, dict[str, list[float]]] = {db: {} for db in databases}
    checks: dict[str, dict[str, int]] = {db: {} for db in databases}
    per_round = max(repeat // rounds, 1)
    for _ in range(rounds):
        for database in databases:
            connection.close()
            connection.settings_dict["NAME"] = database
            client.force_authenticate(get_user_model().objects.get(username="bench"))
            for days in (30, 90):
                url = f"/api/support/analytics?days={days}"
                for _ in range(2):  # warm the new connection and SQLite's page cache
                    response = client.get(url)
                    assert response.status_code == 200, response.content[:300]
                checks[database][f"days={days}"] = response.json()["total_conversations"]
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    client.get(url)
                    samples[database].setdefault(f"days={days}", []).append((time.perf_counter() - t0) * 1000)
    return {
        database: {
            "median_ms": {k: statistics.median(v) for k, v in by_window.items()},
            "p95_ms": {k: sorted(v)[int(0.95 * (len(v) - 1))] for k, v in by_window.items()},
            "checks": checks[database],
        }
        for database, by_window in samples.items()
    }


# --- Driver: both sizes, one table -----------------------------------------------------------
def seed(messages: int, database: str) -> dict[str, Any]:
    log(f"size {messages:,} messages -> {database}")
    process = subprocess.run(
        [sys.executable, __file__, "--worker", str(messages), "--db", database],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(process.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--repeat", type=int, default=60, help="Timed requests per window and size.")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.db[0])))
        return 0
    if args.measure:
        print(json.dumps(measure(args.db, args.repeat)))
        return 0

    with tempfile.TemporaryDirectory(prefix="rezvo-bench-") as folder:
        paths = [str(Path(folder) / f"bench-{n}.sqlite3") for n in args.sizes]
        small, large = (seed(n, path) for n, path in zip(args.sizes, paths, strict=True))
        log("timing both sizes, interleaved")
        timed = subprocess.run(
            [sys.executable, __file__, "--measure", "--db", *paths, "--repeat", str(args.repeat)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        results = json.loads(timed.stdout.strip().splitlines()[-1])
        small.update(results[paths[0]])
        large.update(results[paths[1]])
    label_s, label_l = f"{small['messages']:,} msgs", f"{large['messages']:,} msgs"
    print()
    print(
        f"GET /api/support/analytics on SQLite, daily rollups; median (p95) of {args.repeat} requests per cell,"
        " the two sizes timed in alternating rounds"
    )
    print(f"{'':28}{label_s:>20}{label_l:>20}{'ratio':>9}")
    print(f"{'conversations':28}{small['conversations']:>20,}{large['conversations']:>20,}")
    print(f"{'rollup rows':28}{small['rollup_rows']:>20,}{large['rollup_rows']:>20,}")
    print(f"{'seed (bulk_create), s':28}{small['seed_s']:>20.1f}{large['seed_s']:>20.1f}")
    print(f"{'rebuild_rollups, s':28}{small['rebuild_s']:>20.1f}{large['rebuild_s']:>20.1f}")
    ok = True
    for window in small["median_ms"]:
        s_ms, l_ms = small["median_ms"][window], large["median_ms"][window]
        ratio = l_ms / s_ms
        cell_s = f"{s_ms:.1f} ({small['p95_ms'][window]:.1f}) ms"
        cell_l = f"{l_ms:.1f} ({large['p95_ms'][window]:.1f}) ms"
        print(f"{'analytics ' + window:28}{cell_s:>20}{cell_l:>20}{ratio:>9.2f}")
        if window == "days=30":
            ok = ratio < TARGET_RATIO and l_ms < TARGET_MS
    verdict = "met" if ok else "MISSED"
    print(f"\nTarget (days=30): ratio < {TARGET_RATIO:g} and < {TARGET_MS:g} ms at the large size: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
