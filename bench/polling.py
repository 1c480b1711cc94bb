"""The polling bench (`make bench-polling`): 300 open widgets polling vs the other endpoints' latency.

Issue 12's target: with 300 open widgets polling GET conversations/{id}/messages?after= every 3 s
(If-None-Match, on conversations a person owns, so they really poll), the other endpoints' p95 stays
within 1.5x of the same traffic without them; the worker CPU per poll is printed.

For each database leg this starts gunicorn with the production gunicorn.conf.py on a fresh database,
takes over the polled conversations as a staff member (one agent reply each), and drives it on the
same server in alternating rounds, so a neighbour's CPU burst on a shared machine hits both sides:

  alone    - the other traffic (widget: create, log pairs, read; staff: queue, lists, search,
             transcripts, status changes, analytics), paced, not flat out, from Locust
             (bench/locustfile_polling.py);
  polling  - the same traffic + 300 polling widgets + a staff member replying every second
             (those polls are 200s with the turn, the rest 304s), from a light client of their own
             (bench/pollers.py says why not Locust);
then poll-only (the 300 widgets alone), whose worker CPU / polls is the CPU per poll.

    python bench/polling.py                                   # SQLite and MongoDB legs
    python bench/polling.py --legs sqlite --phase-seconds 10 --rounds 1
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, scheduling
from bench.load_locust import run_locust, summarise
from bench.pollers import OPENING, POLL, REPLY, BackgroundPollers

LOCUSTFILE = "locustfile_polling.py"
OTHERS = ["PacedWidget", "PacedStaff"]
TARGET_RATIO = 1.5
#: The share of the polls due (widgets / 3 s) that must be answered for the ratio to mean anything.
KEPT_UP = 0.8
POLL_EVERY_S = 3.0
#: The widgets' client starts this long before the measured Locust run and ends this long after it.
POLLERS_LEAD_S = 3
#: The other traffic's pace on the MongoDB leg. SecantusDB (the MongoDB-compatible server the leg runs on) is
#: one Python process: measured one request at a time it spends ~44 ms of CPU on a logged pair and ~250 ms on
#: the review queue, so the SQLite leg's pace (40 requests/s) asks it for ~2 CPU s/s and the traffic queues
#: before the polls start. At 2 s (10 requests/s, ~0.5 CPU s/s) it is busy, not saturated, in both phases.
MONGO_PACE_S = 2.0


# --- One leg, in its own interpreter ---------------------------------------------------------
def _polled_conversations(n: int) -> tuple[list[dict[str, str]], str]:
    """`n` conversations a person owns (one agent reply each, as after a takeover); their ids, widget
    tokens and newest turn ids, and the staff token."""
    from rest_framework.authtoken.models import Token

    from support import services

    token = harness.staff_token()
    staff = Token.objects.get(key=token).user
    staff.first_name = "Sam"
    staff.save(update_fields=["first_name"])
    polled = []
    for i in range(n):
        conversation, widget_token = services.conversation_create(source="web", user_id=f"poller-{i}")
        message = services.conversation_reply(conversation=conversation, author=staff, content="Hi, Sam here.")
        polled.append({"id": str(conversation.pk), "token": widget_token, "last_id": str(message.pk)})
    logging.getLogger("rezvo.request").disabled = True  # 300 request lines in the bench's output otherwise
    for widget in polled:
        widget["etag"] = _opened(widget)
    _versions_aged(polled)
    return polled, token


def _versions_aged(polled: list[dict[str, str]]) -> None:
    """Give each polled conversation's poll version a random age, as widgets opened at different times have.

    A version expires VERSION_TTL_S after the last write to its conversation, and the next poll is then
    answered from the database. Made here within seconds of each other, all 300 would expire in the same
    phase: a burst of database reads open widgets do not make, where the steady state is 300 spread over
    VERSION_TTL_S (2.5 a second)."""
    from django.core.cache import cache

    from support import poll_cache

    for widget in polled:
        cache.touch(poll_cache.version_key(widget["id"]), random.randint(1, poll_cache.VERSION_TTL_S))


def _opened(widget: dict[str, str]) -> str:
    """The ETag the widget holds once open: its first poll, made here, before the measured phases.

    The phases measure open widgets polling. Opening one is a different request (no If-None-Match, so the
    database answers it): were all 300 opened at the start of every phase, each phase would begin with a
    burst of 300 database reads that 300 already open widgets do not make."""
    from django.test import Client

    response = Client(HTTP_HOST=harness.HOST).get(
        f"/api/support/conversations/{widget['id']}/messages?after={widget['last_id']}",
        headers={"X-Conversation-Token": widget["token"]},
    )
    if response.status_code != 200 or not response.get("ETag"):
        raise SystemExit(f"opening a polled widget answered {response.status_code}: {response.content[:200]!r}")
    return str(response["ETag"])


def _leg_setup(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    redis_url = harness.redis_url_if_up()
    env = harness.leg_environment(workdir, mongodb_uri=os.environ.get("MONGODB_URI", ""), redis_url=redis_url)
    # The replies queue notifications: into this run's own queue, which no consumer reads.
    env.update(HUEY_NAME=f"bench-{env['CACHE_KEY_PREFIX']}", HUEY_SQLITE_PATH=str(workdir / "huey.sqlite3"))
    harness.prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    polled, token = _polled_conversations(args.pollers)
    poll_file = workdir / "polled.json"
    poll_file.write_text(json.dumps(polled))
    env.update(
        BENCH_STAFF_TOKEN=token,
        BENCH_POLL_FILE=str(poll_file),
        BENCH_POLLERS=str(args.pollers),
        BENCH_PACE_S=str(args.pace),
    )
    env["BENCH_CACHE"] = "Redis" if redis_url else "file cache"
    return env


def _phase(
    server: harness.Server,
    env: dict[str, str],
    workdir: Path,
    *,
    phase: str,
    users: list[str],
    seconds: int,
    n: int,
    pollers: int = 0,
) -> dict[str, Any]:
    """One Locust run of `users`; with `pollers`, the polling widgets and the replier (bench/pollers.py says
    why not Locust) run beside it in a process of their own, from a little before to a little after it. With
    no `users`, the widgets alone for `seconds`."""
    settled_s = server.settle()
    lines_before = len(server.log_lines())
    database = [pid] if (pid := scheduling.database_pid()) else []
    before = scheduling.waits(database), scheduling.waits(server.worker_pids())
    database_cpu_before = scheduling.cpu_seconds(database)
    background = None
    if pollers:
        background = BackgroundPollers(
            server.url,
            dict(env, BENCH_POLLERS=str(pollers)),
            workdir / f"polls-{phase}.json",
            seconds=seconds + 2 * POLLERS_LEAD_S if users else seconds,
            replier=bool(users),
        )
    if users:
        if background is not None:
            time.sleep(POLLERS_LEAD_S)
        run = run_locust(server, env, workdir, phase=phase, users=users, seconds=seconds, n=n, locustfile=LOCUSTFILE)
    else:
        cpu_before, started = server.cpu_seconds(), time.monotonic()
        run = {"entries": [], "failures": [], "locust_cpu_s": 0.0, "seconds": seconds}
    polls = background.finish() if background is not None else {"entries": [], "polls": {}, "cpu_s": 0.0}
    if not users:
        run["wall_seconds"] = round(time.monotonic() - started, 1)
        run["server_cpu_s"] = round(server.cpu_seconds() - cpu_before, 2)
    run["entries"] += polls["entries"]
    run["polls"], run["pollers_cpu_s"] = polls["polls"], polls["cpu_s"]
    run["poll_seconds"] = polls.get("seconds", seconds)
    run["phase"], run["settled_s"] = phase, settled_s
    after = scheduling.waits(database), scheduling.waits(server.worker_pids())
    run["database_wait_s"] = scheduling.waited_since(before[0], after[0])
    run["database_cpu_s"] = round(scheduling.cpu_seconds(database) - database_cpu_before, 2)
    run["workers_wait_s"] = scheduling.waited_since(before[1], after[1])
    run["server_ms"] = _server_latencies(server.log_lines()[lines_before:])
    return run


def _server_latencies(lines: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Latency as the workers measured it (the request log), polls apart from the rest: a gap to Locust's
    figures is time spent queued in the kernel or in a CPU-starved load generator, not in the app."""
    found: dict[str, list[float]] = {"polls": [], "others": []}
    for line in lines:
        poll = line["method"] == "GET" and line["path"].endswith("/messages")
        found["polls" if poll else "others"].append(float(line.get("latency_ms", 0)))
    return found


def _p95(values: list[float]) -> float:
    return round(sorted(values)[int(0.95 * (len(values) - 1))], 1) if values else 0.0


def _drive(server: harness.Server, env: dict[str, str], workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, then alone/polling rounds, then the poll-only phase, on one server."""
    phase = functools.partial(_phase, server, env, workdir)
    phase(phase="warmup", users=OTHERS, seconds=5, n=args.others, pollers=args.pollers)
    rounds: dict[str, list[dict[str, Any]]] = {"alone": [], "polling": []}
    seconds = max(5, args.phase_seconds // args.rounds)
    for i in range(args.rounds):
        rounds["alone"].append(phase(phase=f"alone-{i}", users=OTHERS, seconds=seconds, n=args.others))
        rounds["polling"].append(
            phase(phase=f"polling-{i}", users=OTHERS, seconds=seconds, n=args.others, pollers=args.pollers)
        )
    poll_only = phase(phase="poll-only", users=[], seconds=args.poll_seconds, n=0, pollers=args.pollers)
    return {"rounds": rounds, "poll_only": poll_only}


def _others_p95(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The other endpoints' numbers pooled over `runs` (the poll and the bench's replies left out)."""
    entries = [e for run in runs for e in run["entries"] if e["name"] not in (POLL, OPENING, REPLY)]
    return summarise(entries) if entries else {"requests": 0, "p95_ms": 0.0}


def _per_endpoint(runs: list[dict[str, Any]]) -> dict[str, float]:
    names = sorted({e["name"] for run in runs for e in run["entries"]} - {POLL, OPENING, REPLY})
    return {
        name: summarise([e for run in runs for e in run["entries"] if e["name"] == name])["p95_ms"] for name in names
    }


def _polls(runs: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [e for run in runs for e in run["entries"] if e["name"] == POLL]
    counts: dict[str, int] = {}
    for run in runs:
        for outcome, n in run["polls"].items():
            counts[outcome] = counts.get(outcome, 0) + n
    answered = counts.get("304", 0) + counts.get("200", 0)
    stats = summarise(entries) if entries else {"requests": 0, "p95_ms": 0.0, "p50_ms": 0.0, "errors": 0}
    # Per run over its configured length (every poll falls inside it), the opening polls included.
    rates = [
        sum(e["num_requests"] for e in run["entries"] if e["name"] in (POLL, OPENING))
        / run.get("poll_seconds", run["seconds"])
        for run in runs
    ]
    return {
        **stats,
        "per_second": round(statistics.mean(rates), 1) if rates else 0.0,
        "outcomes": counts,
        "share_304": round(counts.get("304", 0) / answered, 3) if answered else 0.0,
    }


def _per_second(runs: list[dict[str, Any]], field: str, length: str) -> float:
    return round(sum(r[field] for r in runs) / (sum(r[length] for r in runs) or 1), 2)


def _cpu_per_second(runs: list[dict[str, Any]]) -> float:
    seconds = sum(run["wall_seconds"] for run in runs)
    return sum(run["server_cpu_s"] for run in runs) / seconds if seconds else 0.0


def _scheduling(
    alone: list[dict[str, Any]], polling: list[dict[str, Any]], poll_only: dict[str, Any]
) -> dict[str, Any]:
    """Per second of each phase: the database server's CPU (SecantusDB is one Python process: ~1.0 is
    saturated) and the time it and the workers spent runnable but waiting for a CPU (a busy machine)."""
    phases = (("alone", alone), ("polling", polling), ("poll_only", [poll_only]))
    return {
        key: {
            name: round(sum(r[field] for r in runs) / (sum(r["wall_seconds"] for r in runs) or 1), 2)
            for name, runs in phases
        }
        for key, field in (
            ("database_cpu_s_per_s", "database_cpu_s"),
            ("database_wait_s_per_s", "database_wait_s"),
            ("workers_wait_s_per_s", "workers_wait_s"),
        )
    }


def _leg_result(args: argparse.Namespace, env: dict[str, str], drive: dict[str, Any], workers: int) -> dict[str, Any]:
    alone, polling, poll_only = drive["rounds"]["alone"], drive["rounds"]["polling"], drive["poll_only"]
    base, loaded = _others_p95(alone), _others_p95(polling)
    round_ratios = [
        round(_others_p95([b])["p95_ms"] / _others_p95([a])["p95_ms"], 2) if _others_p95([a])["p95_ms"] else 0.0
        for a, b in zip(alone, polling, strict=True)
    ]
    polls_loaded, polls_only = _polls(polling), _polls([poll_only])
    requests_poll_only = sum(e["num_requests"] for e in poll_only["entries"] if e["name"] in (POLL, OPENING))
    # The extra worker CPU per second with the polls, per poll per second (includes the replies' share).
    extra = _cpu_per_second(polling) - _cpu_per_second(alone)
    return {
        "leg": args.leg,
        "database": "MongoDB (SecantusDB, standalone)" if os.environ.get("MONGODB_URI") else "SQLite (WAL)",
        "cache": env["BENCH_CACHE"],
        "workers": workers,
        "pollers": args.pollers,
        "others": args.others,
        "pace_s": args.pace,
        "poll_every_s": POLL_EVERY_S,
        "others_alone": base,
        "others_polling": loaded,
        "pooled_ratio": round(loaded["p95_ms"] / base["p95_ms"], 2) if base["p95_ms"] else 0.0,
        # The verdict, as in bench/load.py: the median of the rounds' ratios, so one neighbour's CPU burst
        # on a shared machine during one round does not decide it.
        "ratio": round(statistics.median(round_ratios), 2),
        "round_ratios": round_ratios,
        "endpoints_p95": {"alone": _per_endpoint(alone), "polling": _per_endpoint(polling)},
        "polls_polling_phase": polls_loaded,
        "polls_poll_only": polls_only,
        "cpu_ms_per_poll_poll_only": (
            round(1000 * poll_only["server_cpu_s"] / requests_poll_only, 2) if requests_poll_only else 0.0
        ),
        "cpu_ms_per_poll_difference": (
            round(1000 * extra / polls_loaded["per_second"], 2) if polls_loaded["per_second"] else 0.0
        ),
        "server_p95_ms": {
            "others_alone": _p95([ms for run in alone for ms in run["server_ms"]["others"]]),
            "others_polling": _p95([ms for run in polling for ms in run["server_ms"]["others"]]),
            "polls_polling": _p95([ms for run in polling for ms in run["server_ms"]["polls"]]),
            "polls_only": _p95(poll_only["server_ms"]["polls"]),
        },
        # Worker CPU seconds per second (2.0 = both cores of a 2-core machine busy with this server alone).
        "worker_cpu_s_per_s": {
            "alone": round(_cpu_per_second(alone), 2),
            "polling": round(_cpu_per_second(polling), 2),
            "poll_only": round(_cpu_per_second([poll_only]), 2),
        },
        **_scheduling(alone, polling, poll_only),
        "clients_cpu_s_per_s": {
            "locust": _per_second(polling, "locust_cpu_s", "wall_seconds"),
            "widgets": _per_second(polling, "pollers_cpu_s", "poll_seconds"),
        },
        "other_errors": loaded.get("errors", 0) + base.get("errors", 0),
        # Seconds each phase waited for the last one's queued requests to finish before it started.
        "settled_s": {r["phase"]: r["settled_s"] for r in (*alone, *polling, poll_only)},
        "failures": [f for run in (*alone, *polling, poll_only) for f in run["failures"]][:10],
    }


def run_leg(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix=f"rezvo-polling-{args.leg}-") as tmp:
        workdir = Path(tmp)
        env = _leg_setup(args, workdir)
        with harness.gunicorn(env, workdir, port=args.port) as server:
            workers = len(server.worker_pids())
            drive = _drive(server, env, workdir, args)
            server_errors = sum(1 for line in server.log_lines() if line["status"] >= 500)
        result = _leg_result(args, env, drive, workers)
        result["server_errors"] = server_errors
        Path(args.result).write_text(json.dumps(result, indent=2))
        return 0


# --- Orchestration ---------------------------------------------------------------------------
def _report(result: dict[str, Any]) -> tuple[str, bool]:
    base, loaded = result["others_alone"], result["others_polling"]
    loaded_polls, only = result["polls_polling_phase"], result["polls_poll_only"]
    # A server that cannot keep up with the polls would pass the ratio by answering few of them.
    expected = result["pollers"] / result["poll_every_s"]
    kept_up = loaded_polls["per_second"] >= KEPT_UP * expected
    ok = kept_up and 0 < result["ratio"] <= TARGET_RATIO and not result["server_errors"] and not result["other_errors"]
    server, cpu, loads = result["server_p95_ms"], result["worker_cpu_s_per_s"], result["clients_cpu_s_per_s"]
    lines = [
        f"{result['database']}, {result['cache']}, {result['workers']} gunicorn workers, "
        f"{result['pollers']} widgets polling every 3 s; other traffic: {result['others']} users, "
        f"one request every {result['pace_s']:g} s each",
        f"  other endpoints alone:        {base['requests']} requests, p50 {base.get('p50_ms', 0):.0f} ms, "
        f"p95 {base['p95_ms']:.0f} ms",
        f"  other endpoints + polling:    {loaded['requests']} requests, p50 {loaded.get('p50_ms', 0):.0f} ms, "
        f"p95 {loaded['p95_ms']:.0f} ms",
        f"  p95 ratio (polling / alone):  {result['ratio']:.2f}, median of the rounds {result['round_ratios']} "
        f"(pooled {result['pooled_ratio']:.2f}); target <= {TARGET_RATIO} -> {'PASS' if ok else 'FAIL'}",
        f"  polls (beside the traffic):   {loaded_polls['per_second']}/s, p50 {loaded_polls.get('p50_ms', 0):.0f} ms, "
        f"p95 {loaded_polls['p95_ms']:.0f} ms, 304 share {100 * loaded_polls['share_304']:.1f}% "
        f"{loaded_polls['outcomes']}",
        f"  polls (alone):                {only['per_second']}/s, p95 {only['p95_ms']:.0f} ms, "
        f"304 share {100 * only['share_304']:.1f}%",
        f"  worker CPU per poll:          {result['cpu_ms_per_poll_poll_only']} ms (poll-only phase: worker CPU "
        f"seconds / polls); {result['cpu_ms_per_poll_difference']} ms (polling minus alone phase, per poll, "
        "replies included)",
        f"  p95 in the workers (request log): other endpoints {server['others_alone']} ms alone, "
        f"{server['others_polling']} ms with polls; polls {server['polls_polling']} ms beside the traffic, "
        f"{server['polls_only']} ms alone; clients' CPU s/s: Locust {loads['locust']}, widgets {loads['widgets']}",
        f"  worker CPU s/s: alone {cpu['alone']}, with polls {cpu['polling']}, polls only {cpu['poll_only']} "
        f"(on {os.cpu_count()} vCPUs; the load average at the start is printed above)",
        f"  errors: other endpoints {result['other_errors']}, 5xx in the server log {result['server_errors']}",
        f"  waited before each phase for the last one's requests to finish (s): {result['settled_s']}",
    ]
    database, waits = result["database_cpu_s_per_s"], (result["database_wait_s_per_s"], result["workers_wait_s_per_s"])
    if any(database.values()):
        lines.append(
            f"  database server CPU s/s: alone {database['alone']}, with polls {database['polling']}, "
            f"polls only {database['poll_only']} (SecantusDB: one Python process, 1.0 is saturated)"
        )
    lines.append(
        "  waiting for a CPU (s/s summed over threads; runnable, not run: a busy machine), "
        + ("database server / workers: " if any(database.values()) else "workers: ")
        + ", ".join(
            f"{name} {waits[0][name]} / {waits[1][name]}" if any(database.values()) else f"{name} {waits[1][name]}"
            for name in ("alone", "polling", "poll_only")
        )
    )
    alone, polling = result["endpoints_p95"]["alone"], result["endpoints_p95"]["polling"]
    lines.append(
        "  p95 ms per endpoint, alone -> with polls: "
        + "; ".join(f"{name} {alone[name]:.0f} -> {polling.get(name, 0):.0f}" for name in alone)
    )
    if not kept_up:
        lines.append(
            f"  FAIL: {loaded_polls['per_second']} polls/s beside the traffic, under {KEPT_UP:.0%} of {expected:.0f}"
        )
    if result["failures"]:
        lines.append(f"  failures: {result['failures']}")
    return "\n".join(lines), ok


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legs", default="sqlite,mongo")
    parser.add_argument("--pollers", type=int, default=300, help="open widgets polling every 3 s")
    parser.add_argument("--others", type=int, default=20, help="Locust users of the other traffic")
    parser.add_argument("--pace", type=float, default=0.5, help="seconds between one other user's requests")
    parser.add_argument(
        "--mongo-pace",
        type=float,
        default=MONGO_PACE_S,
        help="--pace on the MongoDB leg (SecantusDB, one Python process, serves ~0.5 s/s of the other traffic at 2 s)",
    )
    parser.add_argument("--phase-seconds", type=int, default=60, help="length of each side, over all rounds")
    parser.add_argument("--rounds", type=int, default=4, help="alone/polling alternations")
    parser.add_argument("--poll-seconds", type=int, default=15, help="length of the poll-only phase")
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (0: a free one)")
    parser.add_argument("--leg", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _leg_subprocess(leg: str, args: argparse.Namespace, result: Path, extra_env: dict[str, str]) -> int:
    pace = args.mongo_pace if leg == "mongo" else args.pace
    options = ["--pollers", str(args.pollers), "--others", str(args.others), "--pace", str(pace)]
    options += ["--phase-seconds", str(args.phase_seconds), "--rounds", str(args.rounds)]
    options += ["--poll-seconds", str(args.poll_seconds), "--port", str(args.port)]
    command = [sys.executable, __file__, "--leg", leg, "--result", str(result), *options]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"} | extra_env
    print(f"\n=== polling bench, leg: {leg} ===", flush=True)
    return subprocess.run(command, env=env, timeout=1800).returncode


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.leg:
        return run_leg(args)
    print(harness.machine_description(), flush=True)
    failed = []
    with tempfile.TemporaryDirectory(prefix="rezvo-polling-") as tmp:
        for leg, code, result in harness.legs_run(
            args.legs, Path(tmp), lambda leg, result, extra: _leg_subprocess(leg, args, result, extra)
        ):
            if code or not result.exists():
                failed.append(leg)
                continue
            text, ok = _report(json.loads(result.read_text()))
            print(text, flush=True)
            if not ok:
                failed.append(leg)
    if failed:
        print(f"POLLING BENCH FAILED: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
