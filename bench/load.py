"""The load benchmark (`make bench`): throughput, latency, integrity, query counts and memory.

For each database leg (SQLite; MongoDB via a standalone SecantusDB server) this starts gunicorn
with the production gunicorn.conf.py on 127.0.0.1 against a fresh, migrated database, and drives
it from a second process with Locust (headless) in three phases on the same server:

1. ceiling   - a bare Django view inserting one row (bench/urls.py), same stack and config;
2. messages  - message logging alone (pairs with Idempotency-Key), same number of users;
3. mixed     - widget traffic (create, log, read, retry, racing duplicates) + staff traffic.

Then it checks integrity (stored == acknowledged, counters and cost == sums over messages,
one turn per idempotency key; any drift fails the run), counts queries per endpoint at page
sizes 10 and 100 (must be equal), and reports gunicorn workers' peak RSS. Finally it runs the
long schemathesis pass (bench/fuzz.py) and writes everything to docs/benchmarks.md.

    python bench/load.py                          # both legs + fuzz -> docs/benchmarks.md
    python bench/load.py --legs sqlite --no-fuzz --mixed-seconds 10 --phase-seconds 5 --output /tmp/b.md
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.load_checks import fold_wait, integrity, query_counts, rollups_compare
from bench.load_locust import merge_rounds, run_locust
from bench.load_report import render
from tests.fakes.fake_claude import FakeClaude, Reply

CLAUDE_TEXT = "You can change a booking from the Bookings page: pick the booking, then Edit, then Save."


def claude_fault_mix(n: int = 4000, seed: int = 7) -> list[Reply]:
    """Replies for the fake Claude, in order: mostly good, some overloaded or broken mid-stream."""
    rng = random.Random(seed)
    replies = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.04:
            replies.append(Reply(status=529, retry_after=0.01))  # the SDK retries, the next reply answers
        elif roll < 0.07:
            replies.append(Reply(text=CLAUDE_TEXT, chunk_delay=0.01, drop_after=3))  # partial reply
        elif roll < 0.09:
            replies.append(Reply(stream_error_after=0))  # error before any text: knowledge-base fallback
        else:
            replies.append(Reply(text=CLAUDE_TEXT, chunk_delay=0.01, input_tokens=rng.randint(300, 3000)))
    return replies


# --- One leg, in its own interpreter ---------------------------------------------------------
def _leg_setup(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, str], str, str, str]:
    """A fresh migrated database and Django in this process: (server env, ceiling id, staff token, Redis URL)."""
    redis_url = harness.redis_url_if_up()
    env = harness.leg_environment(workdir, mongodb_uri=os.environ.get("MONGODB_URI", ""), redis_url=redis_url)
    harness.prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from support import services

    ceiling, _ = services.conversation_create(source="web", user_id="bench-ceiling")
    env["BENCH_CEILING_CONVERSATION_ID"] = str(ceiling.pk)
    env["BENCH_STAFF_TOKEN"] = token = harness.staff_token()
    return env, str(ceiling.pk), token, redis_url


def _drive(server: harness.Server, env: dict[str, str], workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The warm-up, the alternating ceiling/messages rounds and the mixed phase against one server."""
    n = args.users
    # Ceiling and message logging alternate in short rounds, so a neighbour's burst of CPU on a
    # shared machine hits both sides; the ratio reported is the median of the rounds' ratios.
    # Warm-up first (imports, connection pools, first-request costs), counted for integrity only.
    warmup = run_locust(server, env, workdir, phase="warmup", users=["CeilingUser", "LoggerUser"], seconds=3, n=n)
    rounds: dict[str, list[dict[str, Any]]] = {"ceiling": [], "messages": [], "messages-nokey": []}
    seconds = max(2, args.phase_seconds // args.rounds)
    users_of = {"ceiling": ["CeilingUser"], "messages": ["LoggerUser"], "messages-nokey": ["NoKeyLoggerUser"]}
    for i in range(args.rounds):
        for phase, users in users_of.items():
            rounds[phase].append(
                run_locust(server, env, workdir, phase=f"{phase}-{i}", users=users, seconds=seconds, n=n)
            )
    phases: dict[str, Any] = {name: merge_rounds(rounds[name]) for name in users_of}

    def ratios(phase: str, endpoint: str) -> list[float]:
        return [
            m["endpoints"][endpoint]["rps"] / c["endpoints"]["POST bench/insert (ceiling)"]["rps"]
            for c, m in zip(rounds["ceiling"], rounds[phase], strict=True)
        ]

    round_ratios = ratios("messages", "POST messages")
    nokey_ratios = ratios("messages-nokey", "POST messages (no key)")
    phases["mixed"] = run_locust(
        server,
        env,
        workdir,
        phase="mixed",
        users=["WidgetUser", "StaffUser"],
        seconds=args.mixed_seconds,
        n=n,
    )
    return {"warmup": warmup, "phases": phases, "round_ratios": round_ratios, "nokey_ratios": nokey_ratios}


def _run_server(args: argparse.Namespace, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """gunicorn against a fake Claude (mostly good replies, some faults), driven through every phase."""
    claude = FakeClaude(default=Reply(text=CLAUDE_TEXT, chunk_delay=0.01))
    claude.enqueue(*claude_fault_mix())
    env.update(
        ANTHROPIC_API_KEY="bench-fake-key-not-a-secret",
        ANTHROPIC_BASE_URL=claude.base_url,
        SUPPORT_CLAUDE_TIMEOUT_S="5",
        SUPPORT_CLAUDE_STALL_TIMEOUT_S="2",
    )
    with claude, harness.gunicorn(env, workdir) as server, harness.task_consumer(env, workdir):
        run: dict[str, Any] = {"workers": len(server.worker_pids())}
        run.update(_drive(server, env, workdir, args))
        run["rollups"] = fold_wait(run.setdefault("rollup_problems", []))
        run["log_lines"] = server.log_lines()
        run["log_text"] = server.log_text()
        run["peak"] = sorted(server.peak_rss_kib.values())
    return run


def _acknowledged(warmup: dict[str, Any], phases: dict[str, Any]) -> tuple[dict[str, dict[str, list[str]]], int]:
    """Every key the clients were told was stored (by conversation), and the ceiling rows acknowledged."""
    for phase in (warmup, *phases.values()):
        phase.pop("entries", None)
    acks: dict[str, dict[str, list[str]]] = {}
    for phase in (warmup, phases["messages"], phases["messages-nokey"], phases["mixed"]):
        for conversation_id, keys in phase.pop("acks").items():
            acks.setdefault(conversation_id, {}).update(keys)
    phases["ceiling"].pop("acks")
    return acks, phases["ceiling"]["ceiling_acked"] + warmup["ceiling_acked"]


def _leg_checks(run: dict[str, Any], ceiling_id: str, token: str) -> dict[str, Any]:
    """Integrity, replies, replays, the server log and query counts; `problems` lists every failure."""
    warmup, phases = run["warmup"], run["phases"]
    acks, ceiling_acked = _acknowledged(warmup, phases)
    checks = integrity(acks, ceiling_id, ceiling_acked)
    checks["problems"].extend(run["rollup_problems"])
    checks["rollups"] = {**run["rollups"], "differ": rollups_compare(checks["problems"], ceiling_id)}
    no_reply = phases["mixed"]["chat_outcomes"].get("no_reply", 0)
    if no_reply:
        checks["problems"].append(f"{no_reply} chat turns got no reply")
    mismatches = [m for p in (warmup, phases["messages"], phases["mixed"]) for m in p["replay_mismatches"]]
    if mismatches:
        checks["problems"].append(f"{len(mismatches)} retries replayed other ids than the first answer")
    statuses = collections.Counter(line["status"] for line in run["log_lines"])
    server_errors = sum(v for k, v in statuses.items() if k >= 500)
    locked = run["log_text"].count("database is locked")
    if server_errors:
        checks["problems"].append(f"{server_errors} responses were 5xx (server log)")
    if locked:
        checks["problems"].append(f'"database is locked" appears {locked} times in the server log')
    queries = query_counts(token)
    if queries["unequal"]:
        checks["problems"].append(f"query counts differ between 10 and 100 for {queries['unequal']}")
    return {"integrity": checks, "statuses": statuses, "locked": locked, "queries": queries}


def _leg_result(args: argparse.Namespace, run: dict[str, Any], found: dict[str, Any], redis_url: str) -> dict[str, Any]:
    phases, peak, statuses = run["phases"], run["peak"], found["statuses"]
    for phase in phases.values():
        total = phase["endpoints"].get("Aggregated", {}).get("requests", 0)
        phase["cpu_ms_per_request"] = round(1000 * phase["server_cpu_s"] / total, 2) if total else 0.0
    ceiling_cpu = phases["ceiling"]["cpu_ms_per_request"]
    messages_cpu = phases["messages"]["cpu_ms_per_request"]
    return {
        "leg": args.leg,
        "database": "MongoDB (SecantusDB, standalone)" if os.environ.get("MONGODB_URI") else "SQLite (WAL)",
        "cache": "Redis" if redis_url else "file cache",
        "workers": run["workers"],
        "phases": phases,
        "ratio": round(statistics.median(run["round_ratios"]), 3),
        "round_ratios": [round(r, 3) for r in run["round_ratios"]],
        "ratio_nokey": round(statistics.median(run["nokey_ratios"]), 3),
        "nokey_ratios": [round(r, 3) for r in run["nokey_ratios"]],
        # Noise-robust cross-check on a shared machine: worker CPU per request, ceiling / messages.
        "cpu_ratio": round(ceiling_cpu / messages_cpu, 3) if messages_cpu else 0.0,
        "statuses": dict(sorted(statuses.items())),
        "request_log_lines": len(run["log_lines"]),
        "locust_requests": sum(
            e["requests"]
            for p in (run["warmup"], *phases.values())
            for name, e in p["endpoints"].items()
            if name != "Aggregated"
        ),
        "database_locked": found["locked"],
        "peak_rss_mib": {
            "max": round(peak[-1] / 1024, 1) if peak else 0,
            "median": round(peak[len(peak) // 2] / 1024, 1) if peak else 0,
            "workers_seen": len(peak),
        },
        "integrity": found["integrity"],
        "queries": found["queries"],
    }


def run_leg(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix=f"rezvo-bench-{args.leg}-") as tmp:
        workdir = Path(tmp)
        env, ceiling_id, token, redis_url = _leg_setup(args, workdir)
        run = _run_server(args, env, workdir)
        found = _leg_checks(run, ceiling_id, token)
        result = _leg_result(args, run, found, redis_url)
        Path(args.result).write_text(json.dumps(result, indent=2))
        return 1 if found["integrity"]["problems"] else 0


# --- Orchestration ---------------------------------------------------------------------------
def leg_subprocess(leg: str, args: argparse.Namespace, result: Path, extra_env: dict[str, str]) -> int:
    command = [
        sys.executable,
        __file__,
        "--leg",
        leg,
        "--result",
        str(result),
        "--users",
        str(args.users),
        "--phase-seconds",
        str(args.phase_seconds),
        "--rounds",
        str(args.rounds),
        "--mixed-seconds",
        str(args.mixed_seconds),
    ]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"} | extra_env
    print(f"\n=== leg: {leg} ===", flush=True)
    return subprocess.run(command, env=env, timeout=1800).returncode


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legs", default="sqlite,mongo")
    parser.add_argument("--users", type=int, default=24, help="concurrent Locust users in every phase")
    parser.add_argument(
        "--phase-seconds", type=int, default=15, help="length of the ceiling and messages phases (all rounds)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="ceiling/messages alternations")
    parser.add_argument("--mixed-seconds", type=int, default=30, help="length of the mixed phase")
    parser.add_argument("--no-fuzz", action="store_true", help="skip the long schemathesis run")
    parser.add_argument("--fuzz-examples", type=int, default=150)
    parser.add_argument("--output", type=Path, default=harness.ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--leg", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _run_legs(args: argparse.Namespace, tmp: Path, codes: dict[str, int]) -> dict[str, Any]:
    """Each leg in its own interpreter (MongoDB on a standalone SecantusDB started for it); their results."""
    from tests.mongo_server import secantus_server

    results: dict[str, Any] = {}
    for leg in [leg.strip() for leg in args.legs.split(",") if leg.strip()]:
        result = tmp / f"{leg}.json"
        if leg == "mongo":
            with secantus_server(standalone=True) as uri:
                codes[leg] = leg_subprocess(leg, args, result, {"MONGODB_URI": uri})
        else:
            codes[leg] = leg_subprocess(leg, args, result, {})
        if result.exists():
            results[leg] = json.loads(result.read_text())
    return results


def _run_fuzz(args: argparse.Namespace, tmp: Path, codes: dict[str, int]) -> dict[str, Any] | None:
    print("\n=== fuzz: schemathesis, long run ===", flush=True)
    fuzz_json = tmp / "fuzz.json"
    codes["fuzz"] = subprocess.run(
        [
            sys.executable,
            str(harness.ROOT / "bench" / "fuzz.py"),
            "--max-examples",
            str(args.fuzz_examples),
            "--min-requests",
            "1000",
            "--json",
            str(fuzz_json),
        ],
        env={k: v for k, v in os.environ.items() if k != "MONGODB_URI"},
        timeout=1800,
    ).returncode
    return json.loads(fuzz_json.read_text()) if fuzz_json.exists() else None


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.leg:
        return run_leg(args)

    machine = harness.machine_description()
    started = dt.datetime.now(dt.UTC)
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="rezvo-bench-") as tmp:
        results = _run_legs(args, Path(tmp), codes)
        fuzz = None if args.no_fuzz else _run_fuzz(args, Path(tmp), codes)
    finished = dt.datetime.now(dt.UTC)
    report = render(results, fuzz, codes, machine, started, finished, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    harness.report_merge(args.output, report)
    print(report)
    failed = {name: code for name, code in codes.items() if code}
    if failed:
        print(f"BENCH FAILED: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
