"""What the chat proxy adds: our endpoint under gunicorn vs the anthropic SDK calling Claude directly.

    make bench-proxy        (or: .venv/bin/python bench/proxy_overhead.py [--runs 40])

Everything is local and measured side by side in one run:

1. FakeClaude (tests/fakes/fake_claude.py) runs as its own process and answers every request after a fixed
   delay, streaming a reply of N text deltas a few milliseconds apart.
2. The app runs under gunicorn with the shipped gunicorn.conf.py (DEBUG off, a fresh migrated SQLite
   database, the file cache, ANTHROPIC_BASE_URL pointing at the fake).
3. Alternating runs (A B A B ...): the SDK streams a reply from the fake directly; then a customer
   message goes through POST /api/support/conversations/{id}/chat, which stores the customer's turn,
   streams Claude's reply through and stores it (with an Idempotency-Key, as the widget sends). Measured:
   time to the first text delta ("time to first byte" of the reply; our own `start` event, sent before
   Claude answers, is reported separately) and time to the complete reply (the SDK's `message_stop`;
   our `done`, which comes once the reply is stored). "Added" is the difference within each A/B pair.
4. The fake records when it wrote each delta (`delta_sent_at`, GET /_fake/requests); the client
   records when the first one reached it: that gap shows whether anything between buffers.
5. 20 replies stream at once through the endpoint while GET /health and message logging
   (POST .../messages) are timed, against the same calls on the idle server.

Targets (issue 3): under 10 ms p50 added; the first delta reaches the client within 10 ms of the fake
sending it; /health and message logging stay prompt (p95 under 100 ms) while 20 replies stream.
Exit status 1 when a target is missed. `--starvation-demo` instead shows, with small worker pools, why
gunicorn.conf.py caps connections per worker at its thread count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proxy_services import (
    HOST,
    MODEL,
    REPLY_TEXT,
    Services,
    fake_call,
    new_conversation,
    pct,
    request,
    sse_frames,
    start_app,
    start_fake,
)

STREAMS = 20
WARM_UP = 12
TURNS_PER_CONVERSATION = 4
TARGET_ADDED_MS = 10.0
TARGET_FIRST_DELTA_MS = 10.0
TARGET_PROMPT_P95_MS = 100.0
DEADLINE_S = 110.0  # the whole benchmark, start-up included, stays under two minutes


@dataclass
class Timing:
    first_delta_ms: float
    total_ms: float
    first_delta_wall: float
    last_delta_wall: float = 0.0
    last_delta_ms: float = 0.0
    start_ms: float = 0.0
    ok: bool = True


def chat_once(services: Services, conversation: tuple[str, str], message: str) -> Timing:
    conversation_id, token = conversation
    body = json.dumps({"message": message, "stream": True})
    conn = http.client.HTTPConnection(HOST, services.app_port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request(
            "POST",
            f"/api/support/conversations/{conversation_id}/chat",
            body,
            # As the widget does: a client turn id, so a retry after a network error is not a second turn.
            {
                "Content-Type": "application/json",
                "X-Conversation-Token": token,
                "Idempotency-Key": secrets.token_hex(8),
            },
        )
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"chat answered {response.status}: {response.read()[:300]!r}")
        start_ms = first_ms = total_ms = last_ms = 0.0
        first_wall = last_wall = 0.0
        done: dict[str, Any] | None = None
        for event, data, at, wall in sse_frames(response):
            if event == "start":
                start_ms = (at - started) * 1000
            elif event == "delta":
                if not first_ms:
                    first_ms, first_wall = (at - started) * 1000, wall
                last_ms, last_wall = (at - started) * 1000, wall
            elif event == "done":  # the reply is complete, stored, and its id and cost are known
                done, total_ms = data, (at - started) * 1000
        ok = done is not None and not done["fallback"] and not done["partial"] and done["text"] == REPLY_TEXT
        return Timing(
            first_ms, total_ms, first_wall, last_delta_wall=last_wall, last_delta_ms=last_ms, start_ms=start_ms, ok=ok
        )
    finally:
        conn.close()


def direct_once(client: anthropic.Anthropic, message: str) -> Timing:
    started = time.perf_counter()
    first_ms = first_wall = last_ms = last_wall = 0.0
    text = []
    stream = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        system=[{"type": "text", "text": "You are a support assistant.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": message}],
        stream=True,
    )
    total_ms = 0.0
    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            last_ms, last_wall = (time.perf_counter() - started) * 1000, time.time()
            if not first_ms:
                first_ms, first_wall = last_ms, last_wall
            text.append(event.delta.text)
        elif event.type == "message_stop":  # the reply is complete
            total_ms = (time.perf_counter() - started) * 1000
    return Timing(
        first_ms, total_ms, first_wall, last_delta_wall=last_wall, last_delta_ms=last_ms, ok="".join(text) == REPLY_TEXT
    )


def fake_delta_sent(services: Services) -> tuple[float, float]:
    """When the fake wrote the first and the last delta of its latest reply (then forget its records)."""
    records = fake_call(services, "GET", "/_fake/requests")
    fake_call(services, "POST", "/_fake/reset")
    sent = records[-1]["delta_sent_at"]
    return sent[0], sent[-1]


# --- Phases ----------------------------------------------------------------------------------
def side_by_side(services: Services, runs: int) -> dict[str, list[float]]:
    client = anthropic.Anthropic(api_key="test", base_url=services.fake_url, max_retries=0)
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "direct_first",
            "direct_total",
            "proxy_first",
            "proxy_total",
            "proxy_start",
            "added_first",
            "added_total",
            "lag_direct",
            "lag_proxy",
            "last_lag_direct",
            "last_lag_proxy",
            "proxy_done_after_last",
            "direct_stop_after_last",
        )
    }
    # Like real chats, each conversation takes a few turns: later ones carry history to store and send.
    conversations = [new_conversation(services) for _ in range(-(-(runs + WARM_UP) // TURNS_PER_CONVERSATION))]
    # The first pairs warm up every worker process (imports, the SDK client, connections) and are not counted.
    for index in range(runs + WARM_UP):
        direct = direct_once(client, "How much does it cost?")
        first_sent, last_sent = fake_delta_sent(services)
        direct_lag = (direct.first_delta_wall - first_sent) * 1000
        direct_last_lag = (direct.last_delta_wall - last_sent) * 1000
        proxy = chat_once(services, conversations[index // TURNS_PER_CONVERSATION], "How much does it cost?")
        first_sent, last_sent = fake_delta_sent(services)
        proxy_lag = (proxy.first_delta_wall - first_sent) * 1000
        proxy_last_lag = (proxy.last_delta_wall - last_sent) * 1000
        if not (direct.ok and proxy.ok):
            raise SystemExit(f"run {index}: a reply was not the fake's text ({direct.ok=}, {proxy.ok=})")
        if index < WARM_UP:
            continue
        results["direct_first"].append(direct.first_delta_ms)
        results["direct_total"].append(direct.total_ms)
        results["proxy_first"].append(proxy.first_delta_ms)
        results["proxy_total"].append(proxy.total_ms)
        results["proxy_start"].append(proxy.start_ms)
        results["added_first"].append(proxy.first_delta_ms - direct.first_delta_ms)
        results["added_total"].append(proxy.total_ms - direct.total_ms)
        results["lag_direct"].append(direct_lag)
        results["lag_proxy"].append(proxy_lag)
        results["last_lag_direct"].append(direct_last_lag)
        results["last_lag_proxy"].append(proxy_last_lag)
        results["proxy_done_after_last"].append(proxy.total_ms - proxy.last_delta_ms)
        results["direct_stop_after_last"].append(direct.total_ms - direct.last_delta_ms)
    return results


def timed_calls(services: Services, conversation: tuple[str, str], *, until: float, pause: float) -> dict:
    health: list[float] = []
    logging_ms: list[float] = []
    conversation_id, token = conversation
    while time.monotonic() < until:
        started = time.perf_counter()
        status, _ = request(services, "GET", "/health")
        health.append((time.perf_counter() - started) * 1000)
        assert status == 200
        started = time.perf_counter()
        status, _ = request(
            services,
            "POST",
            f"/api/support/conversations/{conversation_id}/messages",
            {"user_message": "Is this logged?", "assistant_message": "Yes.", "input_tokens": 10, "output_tokens": 3},
            {"X-Conversation-Token": token},
        )
        logging_ms.append((time.perf_counter() - started) * 1000)
        assert status == 201, status
        time.sleep(pause)
    return {"health": health, "logging": logging_ms}


def concurrent_streams(services: Services, streams: int = STREAMS) -> dict[str, Any]:
    logger_conversation = new_conversation(services)
    timed_calls(services, logger_conversation, until=time.monotonic() + 1.0, pause=0.0)  # warm-up, not counted
    idle = timed_calls(services, logger_conversation, until=time.monotonic() + 2.0, pause=0.05)

    # 20 long replies: 0.1 s delay, then 24 deltas 0.2 s apart (about 5 s of streaming each), so all are
    # still streaming through the 2 s of probes even if some started a little before the others.
    long_reply = {"text": REPLY_TEXT, "delay": 0.1, "chunk_delay": 0.2, "input_tokens": 900, "output_tokens": 30}
    fake_call(services, "POST", "/_fake/replies", [long_reply] * streams)
    conversations = [new_conversation(services) for _ in range(streams)]
    windows: list[tuple[float, float, bool]] = []
    lock = threading.Lock()
    streaming = threading.Barrier(streams + 1, timeout=30)

    def one(conversation: tuple[str, str]) -> None:
        conversation_id, token = conversation
        conn = http.client.HTTPConnection(HOST, services.app_port, timeout=60)
        began = time.monotonic()
        ok, waited = False, False
        try:
            conn.request(
                "POST",
                f"/api/support/conversations/{conversation_id}/chat",
                json.dumps({"message": "Tell me about pricing"}),
                {"Content-Type": "application/json", "X-Conversation-Token": token},
            )
            response = conn.getresponse()
            for event, data, _, _ in sse_frames(response):
                if event == "delta" and not waited:
                    waited = True
                    streaming.wait()  # everyone is mid-stream before the probes start
                if event == "done":
                    ok = data["text"] == REPLY_TEXT and not data["fallback"]
        finally:
            conn.close()
            if not waited:
                streaming.abort()
            with lock:
                windows.append((began, time.monotonic(), ok))

    threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in conversations]
    for thread in threads:
        thread.start()
    streaming.wait()
    probes_began = time.monotonic()
    loaded = timed_calls(services, logger_conversation, until=probes_began + 2.0, pause=0.05)
    probes_ended = time.monotonic()
    for thread in threads:
        thread.join(timeout=60)
    all_ok = len(windows) == streams and all(ok for _, _, ok in windows)
    overlapped = all(began < probes_began and ended > probes_ended for began, ended, _ in windows)
    return {"idle": idle, "loaded": loaded, "all_ok": all_ok, "overlapped": overlapped}


def starvation_demo() -> int:
    """Why gunicorn.conf.py caps worker_connections at the thread count: 2 workers x 4 threads, 7 replies
    streaming (so one worker has every thread busy), /health timed with gthread's default cap (1000,
    keep-alive on) and with the shipped one."""
    print("2 gunicorn workers x 4 threads, 7 replies streaming; GET /health latency while they stream:")
    for label, extra in (
        ("worker_connections=1000, keepalive=5 (gthread default)", {"GUNICORN_WORKER_CONNECTIONS": "1000"}),
        ("worker_connections=threads, keepalive=0 (shipped)", {}),
    ):
        overrides = {"GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4", "GUNICORN_KEEPALIVE": "5", **extra}
        if not extra:
            overrides.pop("GUNICORN_KEEPALIVE")
        saved = {k: os.environ.get(k) for k in overrides}
        os.environ.update(overrides)
        services = Services(tmp=Path(tempfile.mkdtemp(prefix="bench-proxy-")))
        try:
            start_fake(services, delay=0.1, chunk_delay=0.005)
            start_app(services)
            health = concurrent_streams(services, streams=7)["loaded"]["health"]
        finally:
            services.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        print(
            f"  {label:58} p50 {pct(health, 50):8.1f} ms  max {max(health):8.1f} ms"
            f"  ({len(health)} calls in the 2 s window)"
        )
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="measured A/B pairs (after the warm-up pairs)")
    parser.add_argument("--delay", type=float, default=0.1, help="fake Claude's delay before replying, s")
    parser.add_argument("--chunk-delay", type=float, default=0.005, help="between the fake's deltas, s")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", ""),
        help="keep the app's cache (rate limits) in this Redis, as in production (default $BENCH_REDIS_URL; "
        "unset: the file cache a REDIS_URL-less install uses)",
    )
    parser.add_argument(
        "--starvation-demo",
        action="store_true",
        help="instead: show why gunicorn.conf.py caps connections per worker (small pools, cap off vs on)",
    )
    return parser.parse_args()


def _measure(args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, Any]] | None:
    """The A/B pairs and the concurrent streams, or None when the run went over DEADLINE_S."""
    alarm = threading.Timer(DEADLINE_S, lambda: os.kill(os.getpid(), signal.SIGINT))
    alarm.daemon = True
    alarm.start()
    services = Services(tmp=Path(tempfile.mkdtemp(prefix="bench-proxy-")), redis_url=args.redis_url)
    try:
        print("Starting FakeClaude and gunicorn (shipped gunicorn.conf.py, DEBUG off, fresh SQLite)...", flush=True)
        start_fake(services, delay=args.delay, chunk_delay=args.chunk_delay)
        start_app(services)
        print(f"Running {args.runs} A/B pairs (+{WARM_UP} warm-up)...", flush=True)
        ab = side_by_side(services, args.runs)
        print(f"Streaming {STREAMS} replies at once while timing /health and message logging...", flush=True)
        streams = concurrent_streams(services)
    except KeyboardInterrupt:
        print(f"Benchmark stopped: over its {DEADLINE_S:.0f} s limit.", file=sys.stderr)
        return None
    finally:
        alarm.cancel()
        services.stop()
    return ab, streams


# --- Report ----------------------------------------------------------------------------------
def _print_header(args: argparse.Namespace, load_before: tuple[float, float, float]) -> None:
    deltas = len(REPLY_TEXT.split())
    print()
    print(
        f"Chat proxy overhead - {args.runs} alternating pairs ({TURNS_PER_CONVERSATION} turns a conversation); "
        f"fake Claude: {args.delay * 1000:.0f} ms delay, {deltas} text deltas {args.chunk_delay * 1000:.0f} ms "
        "apart; gunicorn gthread per gunicorn.conf.py"
    )
    print(f"App cache (rate-limit counters): {'Redis' if args.redis_url else 'file cache (no REDIS_URL)'}")
    print(
        f"Host: {os.cpu_count()} CPUs; load average before the run {load_before[0]:.1f} (1 min) "
        f"{load_before[1]:.1f} (5 min): other work on the host adds noise to every figure"
    )


def _print_pairs(ab: dict[str, list[float]]) -> None:
    print(f"{'':34}{'direct SDK':>12}{'via /chat':>12}{'added (paired)':>17}")
    rows = (
        ("time to first text delta  p50", "direct_first", "proxy_first", "added_first", 50),
        ("                          p95", "direct_first", "proxy_first", "added_first", 95),
        ("time to complete reply    p50", "direct_total", "proxy_total", "added_total", 50),
        ("                          p95", "direct_total", "proxy_total", "added_total", 95),
    )
    for label, direct_key, proxy_key, added_key, q in rows:
        print(
            f"{label:34}{pct(ab[direct_key], q):>9.1f} ms{pct(ab[proxy_key], q):>9.1f} ms"
            f"{pct(ab[added_key], q):>+14.1f} ms"
        )
    print(
        f"{'our start event (turn stored)  p50':34}{'':>12}{pct(ab['proxy_start'], 50):>9.1f} ms"
        "   (sent before Claude answers)"
    )
    print()
    print("Fake wrote a delta -> client read it        first delta p50 / p95      last delta p50 / p95")
    for label, first, last in (
        ("direct SDK", "lag_direct", "last_lag_direct"),
        ("via /chat", "lag_proxy", "last_lag_proxy"),
    ):
        print(
            f"  {label:40}{pct(ab[first], 50):8.2f} / {pct(ab[first], 95):6.2f} ms"
            f"{pct(ab[last], 50):13.2f} / {pct(ab[last], 95):6.2f} ms"
        )
    print(
        f"  after the last delta: message_stop {pct(ab['direct_stop_after_last'], 50):.2f} ms later (direct); "
        f"done {pct(ab['proxy_done_after_last'], 50):.2f} ms later (via /chat: the reply is stored first)"
    )


def _print_streams(streams: dict[str, Any]) -> None:
    print()
    print(f"{STREAMS} replies streaming at once (each ~5 s) vs idle server: latency of other calls")
    print(f"{'':34}{'idle p50':>10}{'p95':>9}{'loaded p50':>12}{'p95':>9}{'max':>9}{'n':>5}")
    for label, key in (("GET /health", "health"), ("POST .../messages (logging)", "logging")):
        idle, loaded = streams["idle"][key], streams["loaded"][key]
        print(
            f"{label:34}{pct(idle, 50):>7.1f} ms{pct(idle, 95):>6.1f} ms{pct(loaded, 50):>9.1f} ms"
            f"{pct(loaded, 95):>6.1f} ms{max(loaded):>6.1f} ms{len(loaded):>5}"
        )
    print(
        f"  all {STREAMS} streams completed with Claude's text: {streams['all_ok']}; "
        f"all were mid-stream for the whole probe window: {streams['overlapped']}"
    )


def _checks(ab: dict[str, list[float]], streams: dict[str, Any]) -> list[tuple[str, bool]]:
    return [
        (f"added time to first delta p50 < {TARGET_ADDED_MS:.0f} ms", pct(ab["added_first"], 50) < TARGET_ADDED_MS),
        (f"added total time p50 < {TARGET_ADDED_MS:.0f} ms", pct(ab["added_total"], 50) < TARGET_ADDED_MS),
        (
            f"first delta reaches the client within {TARGET_FIRST_DELTA_MS:.0f} ms (p50)",
            pct(ab["lag_proxy"], 50) < TARGET_FIRST_DELTA_MS,
        ),
        (
            f"/health p95 < {TARGET_PROMPT_P95_MS:.0f} ms with {STREAMS} streams",
            pct(streams["loaded"]["health"], 95) < TARGET_PROMPT_P95_MS,
        ),
        (
            f"message logging p95 < {TARGET_PROMPT_P95_MS:.0f} ms with {STREAMS} streams",
            pct(streams["loaded"]["logging"], 95) < TARGET_PROMPT_P95_MS,
        ),
        (f"{STREAMS} concurrent streams all completed and overlapped", streams["all_ok"] and streams["overlapped"]),
    ]


def main() -> int:
    args = _parse_args()
    if args.starvation_demo:
        return starvation_demo()

    began = time.monotonic()
    load_before = os.getloadavg()
    measured = _measure(args)
    if measured is None:
        return 1
    ab, streams = measured
    _print_header(args, load_before)
    _print_pairs(ab)
    _print_streams(streams)
    checks = _checks(ab, streams)
    print()
    for label, passed in checks:
        print(f"  [{'PASS' if passed else 'FAIL'}] {label}")
    print(f"\nBenchmark took {time.monotonic() - began:.0f} s.")
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
