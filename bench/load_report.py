"""docs/benchmarks.md from bench/load.py's results: one section per database leg, then the long fuzz run."""

from __future__ import annotations

import argparse
import datetime as dt
import platform
from typing import Any

TARGET_RATIO = 0.5


def _ms(value: float) -> str:
    return f"{value:.0f}"


def _header(machine: str, started: dt.datetime, finished: dt.datetime, args: argparse.Namespace) -> list[str]:
    return [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/load.py); rerun it to reproduce. Numbers from a shared machine are",
        "noisy: compare the ratios measured side by side in one run, not absolute figures across runs.",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC ({(finished - started).total_seconds():.0f} s in all)",
        f"- Machine: {machine}",
        f"- Software: {platform.python_implementation()} {platform.python_version()}, gunicorn with the unchanged"
        " `gunicorn.conf.py` (gthread), DEBUG off, Locust headless in a second process on the same machine",
        f"- Load: {args.users} concurrent users, no think time; ceiling and messages phases {args.phase_seconds} s"
        f" each (in {args.rounds} alternating rounds), mixed phase {args.mixed_seconds} s",
        "",
    ]


def _leg_intro(result: dict[str, Any], verdict: str, relative_only: bool) -> list[str]:
    out = [
        f"## {result['database']} ({verdict})",
        "",
        f"{result['workers']} workers, throttle counters in {result['cache']}.",
    ]
    if relative_only:
        out += [
            "SecantusDB is a MongoDB-compatible server written in Python, so absolute speed here says",
            "nothing about MongoDB: only correctness and the ratio are reported.",
        ]
    out.append("")
    return out


def _ratio_lines(result: dict[str, Any], cpu: dict[str, float]) -> list[str]:
    lines = []
    for label, ratio, rounds in (
        ("with an Idempotency-Key", result["ratio"], result["round_ratios"]),
        ("without a key", result["ratio_nokey"], result["nokey_ratios"]),
    ):
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        lines.append(
            f"- **Message logging {label} / ceiling = {ratio:.2f} in requests/s**: {verdict} (target >= {TARGET_RATIO};"
            f" median of {len(rounds)} alternating rounds: {rounds}); {2 * ratio:.2f} in rows written per second"
            " (a logged pair is two messages, the ceiling one row)."
        )
    rollups = result["integrity"].get("rollups", {})
    if rollups:
        lines.append(
            f"- Rollup fold (the task queue's consumer, beside the server): {rollups['pending_after']} turns pending"
            f" {rollups['fold_wait_s']} s after the load; rollups equal to a rebuild:"
            f" {'yes' if not rollups['differ'] else 'NO, ' + ', '.join(rollups['differ'])}."
        )
    return [
        *lines,
        "",
        f"Worker CPU per request: ceiling {cpu['ceiling']:.2f} ms, message logging {cpu['messages']:.2f} ms"
        f" (CPU ratio {result['cpu_ratio']:.2f}, the throughput ratio to expect on an otherwise idle machine).",
        "",
    ]


def _latency_tables(result: dict[str, Any], cpu: dict[str, float]) -> list[str]:
    ceiling = result["phases"]["ceiling"]["endpoints"]["POST bench/insert (ceiling)"]
    logging = result["phases"]["messages"]["endpoints"]["POST messages"]
    nokey = result["phases"]["messages-nokey"]["endpoints"]["POST messages (no key)"]
    out = [
        "| Phase (same server, same users) | req/s | p50 ms | p95 ms | p99 ms | errors | worker CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| Ceiling: bare view inserting one row | {ceiling['rps']:.0f} | {_ms(ceiling['p50_ms'])} |"
        f" {_ms(ceiling['p95_ms'])} | {_ms(ceiling['p99_ms'])} | {ceiling['errors']} | {cpu['ceiling']:.2f} |",
        f"| Message logging (a pair, Idempotency-Key) | {logging['rps']:.0f} | {_ms(logging['p50_ms'])} |"
        f" {_ms(logging['p95_ms'])} | {_ms(logging['p99_ms'])} | {logging['errors']} | {cpu['messages']:.2f} |",
        f"| Message logging (a pair, no key) | {nokey['rps']:.0f} | {_ms(nokey['p50_ms'])} |"
        f" {_ms(nokey['p95_ms'])} | {_ms(nokey['p99_ms'])} | {nokey['errors']} | {cpu['messages-nokey']:.2f} |",
        "",
        "Mixed phase, per endpoint:",
        "",
        "| Endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    mixed = result["phases"]["mixed"]["endpoints"]
    for name, e in sorted(mixed.items(), key=lambda kv: (kv[0] == "Aggregated", kv[0])):
        label = "**All**" if name == "Aggregated" else name
        out.append(
            f"| {label} | {e['requests']} | {e['rps']:.1f} | {_ms(e['p50_ms'])} | {_ms(e['p95_ms'])} |"
            f" {_ms(e['p99_ms'])} | {e['errors']} |"
        )
    return out


def _counts_table(result: dict[str, Any]) -> list[str]:
    mixed = result["phases"]["mixed"]["endpoints"]
    return [
        "| Endpoint (mixed phase) | requests | errors |",
        "|---|---:|---:|",
        *(f"| {name} | {e['requests']} | {e['errors']} |" for name, e in sorted(mixed.items()) if name != "Aggregated"),
    ]


def _chat_outcomes(result: dict[str, Any]) -> list[str]:
    outcomes = result["phases"]["mixed"].get("chat_outcomes", {})
    if not outcomes:
        return []
    return [
        "",
        "Chat turns in the mixed phase (fake Claude over HTTP: ~4% 529 then a retry, ~3% dropped"
        f" mid-stream, ~2% an error before any text): {outcomes['claude']} answered by Claude,"
        f" {outcomes['partial']} partial with a closing line, {outcomes['fallback']} answered from the"
        f" knowledge base, {outcomes['no_reply']} without a reply; {outcomes.get('waited', 0)} tries found every"
        " reply thread of a worker busy (429 `server_busy`) and were sent again a second later, as the widget does.",
    ]


def _integrity_lines(result: dict[str, Any]) -> list[str]:
    checks = result["integrity"]
    failures = [f for p in result["phases"].values() for f in p["failures"]]
    out = [""]
    if failures:
        out += ["Errors seen by the load generator:", "", *(f"- {f}" for f in failures), ""]
    out += [
        "Integrity after the run:",
        "",
        f"- messages stored {checks['messages_stored']} == acknowledged {checks['messages_acknowledged']};"
        f" {checks['idempotency_keys']} idempotency keys, each owning exactly its own turn",
        f"- counters and cost == sum over messages for all {checks['conversations_checked']} conversations",
        f"- ceiling rows stored {checks['ceiling_rows']} == acknowledged",
        f'- server responses by status: {result["statuses"]}; "database is locked": {result["database_locked"]}',
        f"- request log: {result['request_log_lines']} JSON lines for {result['locust_requests']} requests sent",
    ]
    if checks["problems"]:
        out += ["", "**Problems:**", "", *(f"- {p}" for p in checks["problems"])]
    return out


def _queries_and_memory(result: dict[str, Any]) -> list[str]:
    q = result["queries"]
    return [
        "",
        "Queries per request:",
        "",
        "| Endpoint | at 10 | at 100 |",
        "|---|---:|---:|",
        *(f"| {name} | {a} | {b} |" for name, (a, b) in q["at_10_and_100"].items()),
        *(f"| {name} | {n} | |" for name, n in q["single"].items()),
        "",
        "(page size 10 / 100 for lists, 10 / 100 messages for a transcript, days=10 / 100 for analytics)",
        "",
        f"gunicorn worker peak RSS: max {result['peak_rss_mib']['max']} MiB, median"
        f" {result['peak_rss_mib']['median']} MiB over {result['peak_rss_mib']['workers_seen']} worker"
        " processes (recycled workers included).",
        "",
    ]


def _leg_section(leg: str, result: dict[str, Any], codes: dict[str, int]) -> list[str]:
    relative_only = leg == "mongo"
    verdict = "PASS" if not result["integrity"]["problems"] and not codes.get(leg) else "FAIL"
    cpu = {name: result["phases"][name]["cpu_ms_per_request"] for name in ("ceiling", "messages", "messages-nokey")}
    out = _leg_intro(result, verdict, relative_only) + _ratio_lines(result, cpu)
    out += _counts_table(result) if relative_only else _latency_tables(result, cpu)
    return out + _chat_outcomes(result) + _integrity_lines(result) + _queries_and_memory(result)


def _fuzz_section(fuzz: dict[str, Any], codes: dict[str, int]) -> list[str]:
    verdict = "PASS" if not codes.get("fuzz") else "FAIL"
    return [
        f"## Schemathesis, long run ({verdict})",
        "",
        f"{fuzz['requests']} generated requests against `/api/schema/` on {fuzz['database']} as staff and as the"
        f" widget (seed {fuzz['seed']}, {fuzz['max_examples']} examples per operation): {fuzz['server_errors']}"
        f" responses 5xx, schemathesis exit codes {fuzz['schemathesis_exit']} (0 = no check failed).",
        "",
        f"Statuses: {fuzz['statuses']}",
        "",
    ]


def render(
    results: dict[str, Any],
    fuzz: dict[str, Any] | None,
    codes: dict[str, int],
    machine: str,
    started: dt.datetime,
    finished: dt.datetime,
    args: argparse.Namespace,
) -> str:
    out = _header(machine, started, finished, args)
    for leg, result in results.items():
        out += _leg_section(leg, result, codes)
    if fuzz is not None:
        out += _fuzz_section(fuzz, codes)
    out += [
        "## Not covered",
        "",
        "Real Claude latency and cost: chat runs against tests/fakes/fake_claude.py (~10 ms per streamed word)."
        " The proxy's own overhead against the SDK called directly is `make bench-proxy`.",
        "",
    ]
    return "\n".join(out)
