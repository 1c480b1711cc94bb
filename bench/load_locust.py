"""One Locust run against the benchmark's gunicorn (bench/load.py), and its numbers.

Locust runs headless in its own process; its final JSON stats give exact request counts and latencies
(in Locust's buckets), the ack file (bench/locustfile.py) what each client was told was stored.
"""

from __future__ import annotations

import collections
import csv
import json
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import harness


def _locust_command(
    server: harness.Server, prefix: Path, users: list[str], seconds: int, n: int, locustfile: str = "locustfile.py"
) -> list[str]:
    return [
        str(harness.BIN / "locust"),
        "-f",
        str(harness.ROOT / "bench" / locustfile),
        "--headless",
        "--host",
        server.url,
        "--users",
        str(n),
        "--spawn-rate",
        str(n),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "15",
        "--csv",
        str(prefix),
        "--json-file",
        str(prefix),  # Locust adds ".json"
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
        *users,
    ]


def _children_cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def _failures(prefix: Path) -> list[str]:
    failures_csv = Path(f"{prefix}_failures.csv")
    if not failures_csv.exists():
        return []
    with failures_csv.open(newline="") as rows:
        return [f"{r['Name']}: {r['Error']} x{r['Occurrences']}" for r in csv.DictReader(rows)]


def run_locust(
    server: harness.Server,
    env: dict[str, str],
    workdir: Path,
    *,
    phase: str,
    users: list[str],
    seconds: int,
    n: int,
    locustfile: str = "locustfile.py",
) -> dict[str, Any]:
    prefix = workdir / f"locust-{phase}"
    ack_file = workdir / f"acks-{phase}.json"
    command = _locust_command(server, prefix, users, seconds, n, locustfile)
    locust_env = dict(env, BENCH_ACK_FILE=str(ack_file))
    log_lines_before = len(server.log_lines())
    cpu_before = server.cpu_seconds()
    children_before = _children_cpu_seconds()
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=harness.ROOT, env=locust_env, capture_output=True, text=True, timeout=seconds + 120
    )
    elapsed = time.monotonic() - started
    server_cpu = server.cpu_seconds() - cpu_before
    locust_cpu = _children_cpu_seconds() - children_before
    if result.returncode != 0:
        raise RuntimeError(f"locust failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    entries = json.loads(Path(f"{prefix}.json").read_text())
    endpoints = {entry["name"]: summarise([entry]) for entry in entries}
    endpoints["Aggregated"] = summarise(entries)
    acks = json.loads(ack_file.read_text()) if ack_file.exists() else {}
    return {
        "entries": entries,
        "seconds": seconds,
        "wall_seconds": round(elapsed, 1),
        "users": n,
        "endpoints": endpoints,
        "failures": _failures(prefix)[:20],
        "acks": acks.get("acks", {}),
        "replay_mismatches": acks.get("replay_mismatches", []),
        "ceiling_acked": acks.get("ceiling_acked", 0),
        "chat_outcomes": acks.get("chat_outcomes", {}),
        "log_lines": len(server.log_lines()) - log_lines_before,
        "server_cpu_s": round(server_cpu, 2),
        "locust_cpu_s": round(locust_cpu, 2),
    }


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One phase made of several Locust runs: counts summed, latencies pooled, req/s averaged."""
    merged: dict[str, Any] = {
        "seconds": sum(r["seconds"] for r in rounds),
        "users": rounds[0]["users"],
        "failures": [f for r in rounds for f in r["failures"]],
        "acks": {},
        "replay_mismatches": [m for r in rounds for m in r["replay_mismatches"]],
        "ceiling_acked": sum(r["ceiling_acked"] for r in rounds),
        "chat_outcomes": {},
        "log_lines": sum(r["log_lines"] for r in rounds),
        "server_cpu_s": round(sum(r["server_cpu_s"] for r in rounds), 2),
        "locust_cpu_s": round(sum(r["locust_cpu_s"] for r in rounds), 2),
        "endpoints": {},
    }
    for r in rounds:
        for conversation_id, keys in r["acks"].items():
            merged["acks"].setdefault(conversation_id, {}).update(keys)
    names = {name for r in rounds for name in r["endpoints"]}
    for name in names:
        entries = [e for r in rounds for e in r["entries"] if name in ("Aggregated", e["name"])]
        pooled = summarise(entries)
        runs = [r["endpoints"][name] for r in rounds if name in r["endpoints"]]
        pooled["rps"] = round(statistics.mean(run["rps"] for run in runs), 1)
        merged["endpoints"][name] = pooled
    return merged


def summarise(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests, errors, req/s and latency percentiles from Locust's final JSON stats (exact counts;
    latencies in Locust's buckets: whole ms below 100 ms, 2 significant digits above)."""
    if not entries:  # a run in which no request finished
        return {"requests": 0, "errors": 0, "rps": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    requests = sum(e["num_requests"] for e in entries)
    times: collections.Counter[int] = collections.Counter()
    for e in entries:
        times.update({int(k): v for k, v in e["response_times"].items()})
    start = min(e["start_time"] for e in entries)
    end = max(e["last_request_timestamp"] or e["start_time"] for e in entries)

    def percentile(q: float) -> float:
        if not times:
            return 0.0
        rank, seen = q * sum(times.values()), 0
        for ms in sorted(times):
            seen += times[ms]
            if seen >= rank:
                return float(ms)
        return float(max(times))

    return {
        "requests": requests,
        "errors": sum(e["num_failures"] for e in entries),
        "rps": round(requests / (end - start), 1) if end > start else 0.0,
        "p50_ms": percentile(0.50),
        "p95_ms": percentile(0.95),
        "p99_ms": percentile(0.99),
    }
