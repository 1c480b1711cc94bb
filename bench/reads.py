"""The read-path bench (`make bench-reads`, issue 13): GET analytics and GET tickets on both databases.

Each leg (SQLite; MongoDB on a standalone SecantusDB server) runs in its own interpreter on a fresh
database: migrate, seed 2,000 conversations with 10 messages each (20,000 messages, spread over 120 days,
a third of them tickets waiting for a person), rebuild the daily rollups as `manage.py rebuild_rollups`
does, then time the two reads in-process through the whole Django/DRF stack (no HTTP server: the figure
is the app's own time), in alternating rounds so a neighbour's CPU burst hits both:

  GET analytics?days=30          p50/p95; target < 120 ms on the MongoDB leg
  GET tickets?page_size=50       50 tickets of 10 messages; same target

It also counts the database commands of GET analytics at days=10 and days=100 and of GET tickets at page
sizes 10 and 50 (a pymongo CommandListener on MongoDB, Django's query log on SQLite): they must be equal.

    .venv/bin/python bench/reads.py                    # both legs (make bench-reads)
    .venv/bin/python bench/reads.py --legs mongo --repeat 20
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

CONVERSATIONS = 2000
MESSAGES_PER_CONVERSATION = 10
SPREAD_DAYS = 120
QUESTIONS = [f"question number {i} about bookings and billing" for i in range(400)]
BUSINESSES = ["", "venue-1", "venue-2", "venue-3", "venue-4"]
TARGET_MS = 120.0
ANALYTICS = "/api/support/analytics?days=30"
TICKETS = "/api/support/tickets?page_size=50"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- One leg, in its own interpreter ---------------------------------------------------------
def _conversation(rng: random.Random, weights: list[float], now: datetime) -> Any:
    from support.models import Conversation

    created = now - timedelta(seconds=rng.randint(0, SPREAD_DAYS * 86400 - 1))
    question = rng.choices(QUESTIONS, weights)[0]
    escalated = rng.random() < 0.35
    status, escalated_at, closed_at = "auto_resolved", None, None
    if escalated:
        escalated_at = created + timedelta(minutes=2)
        status = rng.choice(["needs_review", "open", "in_progress", "needs_review", "closed"])
        if status == "closed":
            closed_at = escalated_at + timedelta(minutes=rng.randint(5, 4000))
    return Conversation(
        source=rng.choice(["web", "web", "app_owner", "app_diner", "dashboard"]),
        status=status,
        escalated=escalated,
        escalation_reason=rng.choice(["support_email", "human_requested", "widget_flag"]) if escalated else "",
        escalated_at=escalated_at,
        closed_at=closed_at,
        business_id=rng.choice(BUSINESSES),
        audience=rng.choice(["", "diner", "owner"]),
        rating=rng.choice(["", "", "up", "down"]),
        summary=question,
        question_key=question,
        message_count=MESSAGES_PER_CONVERSATION,
        total_input_tokens=5 * 500,
        total_output_tokens=5 * 300,
        cost_micros=5 * 2000,
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
                    model="" if user else model,
                    input_tokens=0 if user else 500,
                    output_tokens=0 if user else 300,
                    cost_micros=0 if user else 2000,
                    created_at=conversation.created_at + timedelta(seconds=30 * step),
                )
            )
    return turns


def _seed() -> dict[str, Any]:
    """The same conversations and messages every run (fixed seed), then the rollups rebuilt from them."""
    from django.utils import timezone

    from support import services
    from support.models import Conversation, Message

    rng = random.Random(13)
    weights = [1 / (rank + 1) for rank in range(len(QUESTIONS))]  # Zipf-like: a few questions dominate
    now = timezone.now()
    started = time.perf_counter()
    for _ in range(0, CONVERSATIONS, 500):
        made = Conversation.objects.bulk_create([_conversation(rng, weights, now) for _ in range(500)])
        Message.objects.bulk_create(_turns(rng, made), batch_size=2500)
    seed_s = time.perf_counter() - started
    result = services.rollups_rebuild(batch_size=1000)
    return {
        "conversations": Conversation.objects.count(),
        "messages": Message.objects.count(),
        "rollup_rows": result.rows,
        "seed_s": round(seed_s, 1),
    }


class _Sent:
    """The MongoDB commands sent since the leg started, by name (a pymongo CommandListener)."""

    names: list[str] = []


def _mongo_listen() -> None:
    """Count every command the driver sends (registered before the first client: pymongo gives a global
    listener only to clients created after it)."""
    from pymongo import monitoring

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            _Sent.names.append(event.command_name)

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    monitoring.register(Listener())


def _commands(client: Any, url: str) -> list[int]:
    """[queries, getMores] of one GET of `url`: the wire commands on MongoDB (a getMore is a further batch of
    a query's answer past its first 101 documents), the SQL statements on SQLite (no getMore there)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm: the first request of a kind may read prices or settings once
    if connection.vendor != "mongodb":
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        return [len(captured.captured_queries), 0]
    before = len(_Sent.names)
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    sent = _Sent.names[before:]
    return [len([name for name in sent if name != "getMore"]), sent.count("getMore")]


def _timed(client: Any, url: str, samples: list[float]) -> Any:
    started = time.perf_counter()
    response = client.get(url)
    samples.append((time.perf_counter() - started) * 1000)
    assert response.status_code == 200, response.content[:300]
    return response


def run_leg(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"rezvo-reads-{args.leg}-") as tmp:
        env = harness.leg_environment(Path(tmp), mongodb_uri=os.environ.get("MONGODB_URI", ""))
        env.update(ALLOWED_HOSTS="testserver", ROOT_URLCONF="rezvo_support.urls", REQUEST_LOG="false")
        harness.prepare_database(env)
        os.environ.update(env)
        import django

        if os.environ.get("MONGODB_URI"):
            _mongo_listen()
        django.setup()
        from django.contrib.auth import get_user_model
        from rest_framework.test import APIClient

        data = _seed()
        harness.staff_token()
        client = APIClient()
        client.force_authenticate(get_user_model().objects.get(is_superuser=True))
        # As in a gunicorn worker (gunicorn.conf.py's when_ready): what is loaded so far, here the seeding's
        # leftovers too, is out of the collector's reach, so a full collection during a timed request walks
        # only what requests made. Without it, one in ten requests ran a full collection over the seed's
        # heap (+30-80 ms: p95 205 against p50 141 ms on the MongoDB leg).
        from rezvo_support.gunicorn_worker import objects_freeze

        objects_freeze()
        data["commands"] = {
            "analytics days=10": _commands(client, "/api/support/analytics?days=10"),
            "analytics days=100": _commands(client, "/api/support/analytics?days=100"),
            "tickets page_size=10": _commands(client, "/api/support/tickets?page_size=10"),
            "tickets page_size=50": _commands(client, "/api/support/tickets?page_size=50"),
        }
        samples: dict[str, list[float]] = {ANALYTICS: [], TICKETS: []}
        for url in samples:
            for _ in range(3):
                _timed(client, url, [])
        for _ in range(args.repeat):
            tickets = _timed(client, TICKETS, samples[TICKETS]).json()["results"]
            _timed(client, ANALYTICS, samples[ANALYTICS])
        data["ticket_page"] = [len(tickets), min((len(t["messages"]) for t in tickets), default=0)]
        data["ms"] = {url: _stats(values) for url, values in samples.items()}
        return data


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


# --- Orchestration ---------------------------------------------------------------------------
def _report(leg: str, result: dict[str, Any]) -> tuple[list[str], bool]:
    counts = result["commands"]
    # Queries, not getMores: a further batch of one answer follows its size (see _commands).
    equal = (
        counts["analytics days=10"][0] == counts["analytics days=100"][0]
        and counts["tickets page_size=10"][0] == counts["tickets page_size=50"][0]
    )
    fast = all(result["ms"][url]["p95"] < TARGET_MS for url in (ANALYTICS, TICKETS))
    ok = equal and (fast or leg != "mongo")
    database = "MongoDB (SecantusDB, standalone)" if leg == "mongo" else "SQLite (WAL)"
    lines = [
        f"{database}: {result['conversations']:,} conversations, {result['messages']:,} messages, "
        f"{result['rollup_rows']:,} rollup rows (seeded in {result['seed_s']} s)",
    ]
    for url in (ANALYTICS, TICKETS):
        ms = result["ms"][url]
        verdict = ("PASS" if ms["p95"] < TARGET_MS else "FAIL") if leg == "mongo" else "(no target)"
        name = url.removeprefix("/api/support/")
        lines.append(f"  GET {name:28} p50 {ms['p50']:7.1f} ms  p95 {ms['p95']:7.1f} ms  {verdict}")
    tickets, turns = result["ticket_page"]
    lines.append(f"  ticket page: {tickets} tickets, at least {turns} messages each")
    lines.append(
        "  queries (+ getMore): "
        + "; ".join(f"{name} {n} (+{more})" for name, (n, more) in counts.items())
        + f" -> {'equal, PASS' if equal else 'NOT EQUAL, FAIL'}"
    )
    return lines, ok


def _leg_subprocess(leg: str, args: argparse.Namespace, result: Path, extra_env: dict[str, str]) -> int:
    command = [sys.executable, __file__, "--leg", leg, "--result", str(result), "--repeat", str(args.repeat)]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"} | extra_env
    log(f"=== reads bench, leg: {leg} ===")
    return subprocess.run(command, env=env, timeout=1800).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legs", default="sqlite,mongo")
    parser.add_argument("--repeat", type=int, default=40, help="timed requests of each read")
    parser.add_argument("--output", type=Path, help="write the section into this report (docs/benchmarks.md)")
    parser.add_argument("--leg", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.leg:
        Path(args.result).write_text(json.dumps(run_leg(args)))
        return 0
    lines = [harness.machine_description(), ""]
    print(lines[0], flush=True)
    passed = True
    with tempfile.TemporaryDirectory(prefix="rezvo-reads-") as tmp:
        for leg, code, result in harness.legs_run(
            args.legs, Path(tmp), lambda leg, result, extra: _leg_subprocess(leg, args, result, extra)
        ):
            if code or not result.exists():
                lines.append(f"{leg}: the leg failed (exit {code})")
                passed = False
                continue
            text, ok = _report(leg, json.loads(result.read_text()))
            print("\n".join(text), flush=True)
            lines += text
            passed = passed and ok
    print(f"\nreads bench: {'PASS' if passed else 'FAIL'} (MongoDB p95 < {TARGET_MS:g} ms, equal command counts)")
    if args.output:
        harness.report_section_write(
            args.output,
            title="## Read path: analytics and tickets (issue 13)",
            command="make bench-reads",
            lines=["```", *lines, "```"],
            passed=passed,
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
