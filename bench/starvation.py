"""Slow chat streams cannot starve the server (issue 9, finding 3).

    make bench-starvation     (or: .venv/bin/python bench/starvation.py [--streams 175 --ips 7])

Everything local, measured side by side in one run against gunicorn with the shipped gunicorn.conf.py
(DEBUG off, a fresh SQLite database; per-IP stream counts in the embedded store, or Redis with --redis-url):

1. Without streams: a new visitor's chat (a one-line reply from the fake Claude, time to `done`), GET /health
   and a staff API call (GET /api/support/tickets) are timed for a few seconds.
2. Then 175 slow streams from 7 client IPs start at once (each reply ~20 s long; IPs simulated with
   X-Forwarded-For, NUM_PROXIES=1). Those over a cap get 429 at once; the admitted ones stream. While
   they stream the same probes run again, each new visitor from an address of its own. A visitor does
   what the widget does with a 429 `server_busy`: waits its Retry-After (1 s) and sends again.

Targets: a new visitor answered within 3 s (every one, retries included), /health p95 under 500 ms and
the staff API p95 under 1 s while the streams run. PASS/FAIL per target; exit status 1 on any FAIL.
`--no-caps` runs the same load with the caps lifted, to show what they prevent. `--output FILE` writes
the result into FILE's "Slow streams" section (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.proxy_services import (
    HOST,
    REPLY_TEXT,
    ROOT,
    Services,
    app_env,
    fake_call,
    pct,
    request,
    sse_frames,
    start_app,
    start_fake,
)

TARGET_VISITOR_S = 3.0
TARGET_HEALTH_P95_MS = 500.0
TARGET_STAFF_P95_MS = 1000.0
SECTION = "## Slow streams cannot starve the server"


def staff_token(services: Services) -> str:
    code = (
        "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token; "
        "u = get_user_model().objects.create_superuser(username='bench-staff', password=None); "
        "print(Token.objects.create(user=u).key)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=app_env(services),
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


def new_conversation(services: Services, ip: str) -> tuple[str, str]:
    status, body = request(services, "POST", "/api/support/conversations", {"source": "web"}, {"X-Forwarded-For": ip})
    assert status == 201, body
    return body["id"], body["token"]


def open_chat(services: Services, conversation: tuple[str, str], ip: str) -> http.client.HTTPResponse:
    conversation_id, token = conversation
    conn = http.client.HTTPConnection(HOST, services.app_port, timeout=120)
    conn.request(
        "POST",
        f"/api/support/conversations/{conversation_id}/chat",
        json.dumps({"message": "How much does Rezvo cost?"}),
        {"Content-Type": "application/json", "X-Conversation-Token": token, "X-Forwarded-For": ip},
    )
    return conn.getresponse()


def visitor(services: Services, ip: str) -> tuple[float, int, bool]:
    """A new visitor: open a conversation, ask, read to `done`. (seconds, attempts, answered by Claude)."""
    started = time.perf_counter()
    conversation = new_conversation(services, ip)
    for attempt in range(1, 6):
        response = open_chat(services, conversation, ip)
        if response.status == 429:
            wait = float(response.getheader("Retry-After") or 1)
            response.read()
            time.sleep(min(wait, 5))
            continue
        done = next((data for event, data, _, _ in sse_frames(response) if event == "done"), None)
        ok = done is not None and done["text"] == REPLY_TEXT and not done["fallback"]
        return time.perf_counter() - started, attempt, ok
    return time.perf_counter() - started, attempt, False


def probes(services: Services, token: str, seconds: float, visitor_ips: list[str]) -> dict[str, list[Any]]:
    """/health and the staff API in a loop, and new visitors one after another, for `seconds`."""
    until = time.monotonic() + seconds
    out: dict[str, list[Any]] = {"health": [], "staff": [], "visitors": []}

    def loop(name: str, path: str, headers: dict[str, str]) -> None:
        while time.monotonic() < until:
            began = time.perf_counter()
            status, _ = request(services, "GET", path, None, headers)
            assert status == 200, (path, status)
            out[name].append((time.perf_counter() - began) * 1000)
            time.sleep(0.05)

    threads = [
        threading.Thread(target=loop, args=("health", "/health", {})),
        threading.Thread(target=loop, args=("staff", "/api/support/tickets", {"Authorization": f"Token {token}"})),
    ]
    for thread in threads:
        thread.start()
    for ip in visitor_ips:
        if time.monotonic() >= until and out["visitors"]:
            break
        out["visitors"].append(visitor(services, ip))
    for thread in threads:
        thread.join()
    return out


def warm_up(services: Services) -> None:
    """Every worker imports, connects and builds its Claude client on its first requests and chats (seconds
    on a busy machine): done here, on every worker, so neither side of the comparison pays for it."""

    def hit(n: int) -> None:
        for _ in range(3):
            try:
                visitor(services, f"10.199.0.{1 + n}")
                return
            except OSError:
                time.sleep(1)

    threads = [threading.Thread(target=hit, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Streams:
    """`count` slow chat streams from `ips` client addresses, all started at once."""

    def __init__(self, services: Services, count: int, ips: int) -> None:
        self.services = services
        self.addresses = [f"10.66.0.{1 + n % ips}" for n in range(count)]
        self.conversations = [new_conversation(services, ip) for ip in self.addresses]
        self.outcomes: Counter[str] = Counter()
        self.settled = threading.Semaphore(0)  # one release per stream once it is 429 or mid-stream
        self.lock = threading.Lock()

    def _one(self, conversation: tuple[str, str], ip: str) -> None:
        settled = False
        outcome = "broken"
        try:
            response = open_chat(self.services, conversation, ip)
            if response.status != 200:
                outcome = f"{response.status} {json.loads(response.read()).get('reason', '')}".strip()
                return
            for event, _data, _, _ in sse_frames(response):
                if event == "delta" and not settled:
                    settled = True
                    self.settled.release()
                if event in ("done", "error"):
                    outcome = f"200 {event}"
        except OSError as exc:
            outcome = f"{type(exc).__name__}"
        finally:
            with self.lock:
                self.outcomes[outcome] += 1
            if not settled:
                self.settled.release()

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._one, args=(c, ip), daemon=True)
            for c, ip in zip(self.conversations, self.addresses, strict=True)
        ]
        for thread in threads:
            thread.start()
        return threads

    def wait_settled(self, timeout: float) -> int:
        deadline, settled = time.monotonic() + timeout, 0
        while settled < len(self.addresses) and self.settled.acquire(timeout=max(deadline - time.monotonic(), 0.01)):
            settled += 1
        return settled


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The shipped default per-IP cap (proxy_overhead's env lifts it for its own one-IP load unless set here).
    overrides = {"NUM_PROXIES": "1", "SUPPORT_STREAMS_PER_IP": os.environ.get("SUPPORT_STREAMS_PER_IP", "4")}
    if args.workers:
        overrides["GUNICORN_WORKERS"] = str(args.workers)
    if args.no_caps:
        overrides.update(SUPPORT_STREAMS_PER_IP="1000000", SUPPORT_STREAMS_PER_WORKER="1000000")
    os.environ.update(overrides)
    services = Services(tmp=Path(tempfile.mkdtemp(prefix="bench-starvation-")), redis_url=args.redis_url)
    try:
        start_fake(services, delay=0.0, chunk_delay=0.0)  # the visitors' one-line reply
        start_app(services)
        token = staff_token(services)
        warm_up(services)
        visitor_ips = [f"10.200.{n // 250}.{1 + n % 250}" for n in range(200)]
        probes(services, token, 1.0, visitor_ips[:2])  # warm-up, not counted
        idle = probes(services, token, args.probe_seconds, visitor_ips[2:100])

        words = REPLY_TEXT.split(" ")
        slow = {"text": REPLY_TEXT, "delay": 0.1, "chunk_delay": args.stream_seconds / len(words)}
        fake_call(services, "POST", "/_fake/replies", [slow] * args.streams)
        streams = Streams(services, args.streams, args.ips)
        threads = streams.start()
        settled = streams.wait_settled(timeout=60)
        fake_call(services, "POST", "/_fake/reset")  # replies queued for refused streams: the visitors get the fast one
        loaded = probes(services, token, args.probe_seconds, visitor_ips[100:])
        for thread in threads:
            thread.join(timeout=args.stream_seconds + 60)
        skipped = (services.tmp / "gunicorn.log").read_text(errors="replace").count("stream cap skipped")
        return {"idle": idle, "loaded": loaded, "outcomes": streams.outcomes, "settled": settled, "skipped": skipped}
    finally:
        services.stop()


def report(args: argparse.Namespace, result: dict[str, Any]) -> tuple[list[str], bool]:
    idle, loaded = result["idle"], result["loaded"]
    lines = [
        f"gunicorn.conf.py as shipped ({args.workers or 'default'} workers), SQLite, per-IP counts in "
        f"{'Redis' if args.redis_url else 'the embedded store'}{'; caps LIFTED (--no-caps)' if args.no_caps else ''}. "
        f"{args.streams} streams from {args.ips} IPs, each reply ~{args.stream_seconds:.0f} s long; probes for "
        f"{args.probe_seconds:.0f} s each side. Machine: {harness.machine_description()}.",
        "",
        "| | without streams | with the streams | ratio |",
        "|---|---:|---:|---:|",
    ]
    checks: list[tuple[str, bool]] = []

    def row(label: str, a: float, b: float, unit: str) -> None:
        ratio = b / a if a else float("nan")
        lines.append(f"| {label} | {a:.1f} {unit} | {b:.1f} {unit} | {ratio:.1f}x |")

    vis_idle = [s for s, _, _ in idle["visitors"]]
    vis_loaded = [s for s, _, _ in loaded["visitors"]]
    row("new visitor answered, p50", pct(vis_idle, 50) * 1000, pct(vis_loaded, 50) * 1000, "ms")
    row("new visitor answered, max", max(vis_idle) * 1000, max(vis_loaded) * 1000, "ms")
    row("/health p50", pct(idle["health"], 50), pct(loaded["health"], 50), "ms")
    row("/health p95", pct(idle["health"], 95), pct(loaded["health"], 95), "ms")
    row("staff GET /api/support/tickets p50", pct(idle["staff"], 50), pct(loaded["staff"], 50), "ms")
    row("staff GET /api/support/tickets p95", pct(idle["staff"], 95), pct(loaded["staff"], 95), "ms")
    attempts = Counter(n for _, n, _ in loaded["visitors"])
    all_ok = all(ok for _, _, ok in idle["visitors"] + loaded["visitors"])
    lines += [
        "",
        f"Samples with the streams: {len(loaded['visitors'])} visitors (attempts: {dict(sorted(attempts.items()))}; "
        f"all answered by Claude: {all_ok}), {len(loaded['health'])} /health, {len(loaded['staff'])} staff calls.",
        f"Stream outcomes: {dict(sorted(result['outcomes'].items()))} ({result['settled']} of {args.streams} "
        f"streaming or refused before the probes began; per-IP cap skipped for a store error: {result['skipped']}).",
        "",
    ]
    checks.append((f"every new visitor answered within {TARGET_VISITOR_S:.0f} s", max(vis_loaded) < TARGET_VISITOR_S))
    checks.append(("every visitor got Claude's reply", all_ok))
    health_p95, staff_p95 = pct(loaded["health"], 95), pct(loaded["staff"], 95)
    checks.append((f"/health p95 under {TARGET_HEALTH_P95_MS:.0f} ms", health_p95 < TARGET_HEALTH_P95_MS))
    checks.append((f"staff API p95 under {TARGET_STAFF_P95_MS:.0f} ms", staff_p95 < TARGET_STAFF_P95_MS))
    lines += [f"- {'PASS' if ok else 'FAIL'}: {label}" for label, ok in checks]
    return lines, all(ok for _, ok in checks)


def write_section(path: Path, args: argparse.Namespace, lines: list[str], passed: bool) -> None:
    """Replace (or add) this scenario's section: one per streams/IPs/workers/caps combination."""
    workers = f", {args.workers} workers" if args.workers else ""
    title = f"{SECTION}: {args.streams} streams from {args.ips} IPs{workers}{', caps lifted' if args.no_caps else ''}"
    command = (
        "make bench-starvation"
        if not (args.workers or args.no_caps)
        else "bench/starvation.py " + " ".join(sys.argv[1:])
    )
    harness.report_section_write(path, title=title, command=command, lines=lines, passed=passed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=175)
    parser.add_argument("--ips", type=int, default=7)
    parser.add_argument("--workers", type=int, default=0, help="GUNICORN_WORKERS (default: gunicorn.conf.py's)")
    parser.add_argument("--stream-seconds", type=float, default=20.0, help="length of each slow reply")
    parser.add_argument("--probe-seconds", type=float, default=6.0)
    parser.add_argument("--redis-url", default="", help="per-IP counts in this Redis (default: the embedded store)")
    parser.add_argument("--no-caps", action="store_true", help="lift the stream caps (shows what they prevent)")
    parser.add_argument("--output", type=Path, help="write the result into this file's section")
    args = parser.parse_args()
    result = run(args)
    lines, passed = report(args, result)
    print("\n".join(lines))
    if args.output:
        write_section(args.output, args, lines, passed)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
