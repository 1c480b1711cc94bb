"""The write path's shape (`make bench-write-path`, in `make bench`): issue 13's length and round-trip targets.

For each database leg (SQLite, and a standalone SecantusDB server for MongoDB) this migrates a throwaway
database and, in one interpreter, logs the seed's pair form (POST conversations/{id}/messages, the widget's
token, through Django's test client: the whole request, without HTTP or load noise):

- into a conversation of 10 messages and into one of 5,000, alternating in rounds, and prints the median
  time per pair of each and their ratio (target: under 1.2: the cost does not grow with the conversation);
- once more of each form, counting database round trips (statements on SQLite, driver commands on
  MongoDB; tests/fakes/round_trips.py): target at most 4 without an Idempotency-Key and 6 with one.

    python bench/write_path.py                        # both legs, writes docs/benchmarks.md's section
    python bench/write_path.py --legs sqlite --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

LONG = 5000
SHORT = 10
PAIRS_PER_ROUND = 40
LENGTH_TARGET = 1.2
TRIPS_TARGET = {"without a key": 4, "with a key": 6}
REPORT = harness.ROOT / "docs" / "benchmarks.md"


def _conversation_of(length: int) -> tuple[Any, str]:
    """A conversation holding `length` turns (bulk inserted, counters recounted, rollups folded)."""
    from support import services
    from support.models import Message

    conversation, token = services.conversation_create(source="web")
    for start in range(0, length, 1000):
        Message.objects.bulk_create(
            Message(conversation=conversation, role="user" if i % 2 == 0 else "assistant", content=f"Turn {i} here.")
            for i in range(start, min(start + 1000, length))
        )
    services.conversation_recount(conversation=conversation)
    return conversation, token


def _pair(client: Any, conversation: Any, token: str, key: str = "") -> None:
    body = {"user_message": "Where is my booking?", "assistant_message": "Under My bookings.", "input_tokens": 45}
    headers = {"HTTP_X_CONVERSATION_TOKEN": token, **({"HTTP_IDEMPOTENCY_KEY": key} if key else {})}
    response = client.post(
        f"/api/support/conversations/{conversation.pk}/messages",
        data=json.dumps({**body, "output_tokens": 105}),
        content_type="application/json",
        **headers,
    )
    if response.status_code != 201:
        raise RuntimeError(f"{response.status_code}: {response.content[:300]!r}")


def _ms_per_pair(client: Any, conversation: Any, token: str) -> float:
    started = time.perf_counter()
    for _ in range(PAIRS_PER_ROUND):
        _pair(client, conversation, token)
    return 1000 * (time.perf_counter() - started) / PAIRS_PER_ROUND


def _round_trips(client: Any, conversation: Any, token: str) -> dict[str, list[str]]:
    from tests.fakes.round_trips import round_trips

    found: dict[str, list[str]] = {}
    for form, key in (("without a key", ""), ("with a key", uuid.uuid4().hex)):
        with round_trips() as trips:
            _pair(client, conversation, token, key)
        found[form] = list(trips)
    return found


def run_leg(rounds: int) -> dict[str, Any]:
    """In the leg's interpreter, with its environment in os.environ."""
    import django

    django.setup()
    import logging

    from django.test import Client

    logging.getLogger("rezvo.request").disabled = True  # one JSON line per request: noise here

    from support import services

    client = Client(HTTP_HOST=harness.HOST)
    long_conversation, long_token = _conversation_of(LONG)
    services.rollups_fold()
    timings: dict[str, list[float]] = {"short": [], "long": []}
    for index in range(rounds + 1):
        # A fresh short conversation each round, so it stays short; the first round warms up, uncounted.
        short_conversation, short_token = _conversation_of(SHORT)
        if index % 2:  # alternate which goes first, so a drift of the machine hits both alike
            long = _ms_per_pair(client, long_conversation, long_token)
            short = _ms_per_pair(client, short_conversation, short_token)
        else:
            short = _ms_per_pair(client, short_conversation, short_token)
            long = _ms_per_pair(client, long_conversation, long_token)
        if index:
            timings["short"].append(short)
            timings["long"].append(long)
        print(f"  round {index}{' (warm-up)' if not index else ''}: {short:.2f} ms vs {long:.2f} ms", flush=True)
    trips = _round_trips(client, long_conversation, long_token)
    return {"timings": timings, "trips": trips}


def _leg_subprocess(leg: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = harness.leg_environment(workdir, mongodb_uri=os.environ.get("MONGODB_URI", "") if leg == "mongo" else "")
    env.update(HUEY_IMMEDIATE="false", HUEY_NAME=f"bench-{env['CACHE_KEY_PREFIX']}")
    env["HUEY_SQLITE_PATH"] = str(workdir / "huey.sqlite3")
    harness.prepare_database(env)
    result = workdir / "result.json"
    command = [sys.executable, __file__, "--run-leg", "--rounds", str(args.rounds), "--result", str(result)]
    subprocess.run(command, env=env, check=True, timeout=1800)
    outcome: dict[str, Any] = json.loads(result.read_text())
    return outcome


def _summary(leg: str, outcome: dict[str, Any]) -> tuple[list[str], bool]:
    short = statistics.median(outcome["timings"]["short"])
    long = statistics.median(outcome["timings"]["long"])
    ratio = long / short
    counts = {form: len(trips) for form, trips in outcome["trips"].items()}
    passed = ratio < LENGTH_TARGET and all(counts[form] <= limit for form, limit in TRIPS_TARGET.items())
    lines = [
        f"**{leg}**: a pair into a conversation of {LONG:,} messages / one of {SHORT}: **{ratio:.2f}** "
        f"({long:.2f} ms vs {short:.2f} ms per pair, median of {len(outcome['timings']['short'])} rounds of "
        f"{PAIRS_PER_ROUND}; target < {LENGTH_TARGET}) {'PASS' if ratio < LENGTH_TARGET else 'FAIL'}",
        "",
    ]
    for form, trips in outcome["trips"].items():
        verdict = "PASS" if counts[form] <= TRIPS_TARGET[form] else "FAIL"
        lines.append(f"- round trips for a pair {form}: **{counts[form]}** (target <= {TRIPS_TARGET[form]}) {verdict}")
        lines.extend(f"  - `{trip[:110]}`" for trip in trips)
    return lines, passed


def _legs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    outcomes: dict[str, dict[str, Any]] = {}
    for leg in args.legs.split(","):
        print(f"== {leg}: {LONG:,} messages, then {args.rounds} rounds of {PAIRS_PER_ROUND} pairs each way", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"bench-write-{leg}-") as tmp:
            if leg == "mongo" and not os.environ.get("MONGODB_URI"):
                from tests.mongo_server import secantus_server

                with secantus_server(standalone=True) as uri:
                    os.environ["MONGODB_URI"] = uri
                    try:
                        outcomes["MongoDB (SecantusDB, standalone)"] = _leg_subprocess(leg, args, Path(tmp))
                    finally:
                        os.environ.pop("MONGODB_URI", None)
            else:
                name = "SQLite" if leg == "sqlite" else "MongoDB"
                outcomes[name] = _leg_subprocess(leg, args, Path(tmp))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legs", default="sqlite,mongo")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--run-leg", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    if args.run_leg:
        args.result.write_text(json.dumps(run_leg(args.rounds)))
        return 0
    lines = [
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {harness.machine_description()}",
        "",
    ]
    passed = True
    for leg, outcome in _legs(args).items():
        leg_lines, leg_passed = _summary(leg, outcome)
        lines += [*leg_lines, ""]
        passed = passed and leg_passed
    print("\n".join(lines))
    if not args.no_report:
        command = "make bench-write-path"
        harness.report_section_write(
            REPORT, title="## The write path's shape", command=command, lines=lines, passed=passed
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
