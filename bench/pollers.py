"""The polling bench's open widgets (bench/polling.py), in a light client process of their own.

    python bench/pollers.py URL SECONDS OUT.json    (env: BENCH_POLL_FILE, BENCH_POLLERS, BENCH_STAFF_TOKEN)

Each widget does what widget.js does while a person owns its conversation: GET .../messages?after=<newest
id> every 3 s with If-None-Match, keeping the ETag and the newest id from each 200. A staff member replies
to one of the polled conversations every second, so some polls are 200s with a turn.

Why not Locust: real widgets are 300 browsers on 300 machines, so the only load they add to the server's
host is the server's own. This bench has to run them on the server's 2 cores, where Locust's 300 gevent
users cost enough CPU to be a load of their own: they timed their own polls at 132-147 ms on average while a
raw-socket client polling beside them got its answers in 1.7 ms. Here one asyncio loop opens a connection a
poll (the server's keep-alive is off, as gunicorn.conf.py ships it) and spends a fraction of that CPU. Its
own CPU is reported beside the workers' so the reader can check.

OUT.json receives Locust-shaped stats entries (name, counts, latencies in Locust's buckets) so the bench
pools them with Locust's, the polls' outcomes, and the client's CPU seconds; BENCH_POLL_FILE is rewritten
with each widget's newest id and ETag, for the next phase to go on from.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

POLL = "GET messages?after= (poll)"
OPENING = "GET messages?after= (widget opened)"
REPLY = "POST replies (poll bench)"
POLL_EVERY = float(os.environ.get("BENCH_POLL_EVERY_S", "3"))
REPLY_EVERY = float(os.environ.get("BENCH_REPLY_EVERY_S", "1"))
REPLY_BODY = json.dumps({"content": "Thanks, I've moved your booking to 19:30."}).encode()


class Stats:
    """Per request name, what Locust's final JSON stats hold: counts and latencies in Locust's buckets."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.outcomes: collections.Counter[str] = collections.Counter()

    def add(self, name: str, started: float, ms: float, *, failed: bool) -> None:
        new = {"name": name, "num_requests": 0, "num_failures": 0, "response_times": {}, "start_time": started}
        entry = self.entries.setdefault(name, new)
        entry["num_requests"] += 1
        entry["num_failures"] += int(failed)
        entry["last_request_timestamp"] = time.time()
        # Locust's rounding: whole ms below 100, 2 significant digits above.
        bucket = round(ms) if ms < 100 else round(ms, -1) if ms < 1000 else round(ms, -2)
        times = entry["response_times"]
        times[int(bucket)] = times.get(int(bucket), 0) + 1


async def _request(host: str, port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a new connection, read to the server's close: status, headers, body."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.encode("latin-1") + body)
        raw = await reader.read()
    finally:
        writer.close()
    header_block, _, payload = raw.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        payload = _dechunked(payload)
    return status, headers, payload


def _dechunked(payload: bytes) -> bytes:
    body, rest = b"", payload
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if not size:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    return body


async def _poll(widget: dict[str, str], host: str, port: int, stats: Stats, name: str) -> None:
    url = f"/api/support/conversations/{widget['id']}/messages"
    if widget.get("last_id"):
        url += f"?after={widget['last_id']}"
    head = f"GET {url} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Conversation-Token: {widget['token']}\r\n"
    if widget.get("etag"):
        head += f"If-None-Match: {widget['etag']}\r\n"
    head += "Connection: close\r\n\r\n"
    started, clock = time.time(), time.perf_counter()
    try:
        status, headers, payload = await _request(host, port, head)
    except OSError:
        status, headers, payload = 0, {}, b""
    counted = name == POLL
    stats.add(name, started, 1000 * (time.perf_counter() - clock), failed=status not in (200, 304))
    if status == 304:
        stats.outcomes["304"] += counted
    elif status != 200:
        stats.outcomes["error"] += counted
    else:
        stats.outcomes["200"] += counted
        messages = json.loads(payload).get("messages") or []
        if messages:
            stats.outcomes["200 with turns"] += counted
            widget["last_id"] = messages[-1]["id"]
        widget["etag"] = headers.get("etag", "")


async def _widget(widget: dict[str, str], host: str, port: int, stats: Stats, until: float) -> None:
    await asyncio.sleep(random.uniform(0, POLL_EVERY))  # widgets poll at different moments
    if not widget.get("etag"):  # opened by bench/polling.py before the phases; else its first poll
        await _poll(widget, host, port, stats, OPENING)
        await asyncio.sleep(POLL_EVERY)
    while (due := time.monotonic()) < until:
        await _poll(widget, host, port, stats, POLL)
        await asyncio.sleep(max(0.0, due + POLL_EVERY - time.monotonic()))


async def _replier(polled: list[dict[str, str]], host: str, port: int, stats: Stats, until: float) -> None:
    token = os.environ.get("BENCH_STAFF_TOKEN", "")
    while (due := time.monotonic()) < until:
        head = (
            f"POST /api/support/conversations/{random.choice(polled)['id']}/replies HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nAuthorization: Token {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(REPLY_BODY)}\r\nConnection: close\r\n\r\n"
        )
        started, clock = time.time(), time.perf_counter()
        try:
            status = (await _request(host, port, head, REPLY_BODY))[0]
        except OSError:
            status = 0
        stats.add(REPLY, started, 1000 * (time.perf_counter() - clock), failed=status != 201)
        await asyncio.sleep(max(0.0, due + REPLY_EVERY - time.monotonic()))


async def _run(url: str, seconds: float, polled: list[dict[str, str]], widgets: int, replier: bool) -> Stats:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stats, until = Stats(), time.monotonic() + seconds
    tasks = [_widget(polled[i % len(polled)], host, port, stats, until) for i in range(widgets)]
    if replier:
        tasks.append(_replier(polled, host, port, stats, until))
    await asyncio.gather(*tasks)
    return stats


class BackgroundPollers:
    """This module's widgets (and, with `replier`, the staff member replying) for `seconds`, in a process of
    their own beside whatever else the bench runs."""

    def __init__(self, url: str, env: dict[str, str], out: Path, *, seconds: float, replier: bool) -> None:
        self.out, self.seconds = out, seconds
        command = [sys.executable, __file__, url, str(seconds), str(out), *([] if replier else ["--no-replier"])]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self) -> dict[str, Any]:
        """Wait for it to end: its stats entries, the polls' outcomes, its CPU seconds and its length."""
        stdout, stderr = self.process.communicate(timeout=self.seconds + 120)
        if self.process.returncode != 0:
            raise RuntimeError(f"pollers failed ({self.process.returncode}):\n{stdout[-2000:]}\n{stderr[-3000:]}")
        return {**json.loads(self.out.read_text()), "seconds": self.seconds}


def main(argv: list[str]) -> int:
    url, seconds, out = argv[0], float(argv[1]), argv[2]
    replier = "--no-replier" not in argv
    poll_file = os.environ["BENCH_POLL_FILE"]
    with open(poll_file) as f:
        polled = json.load(f)
    widgets = int(os.environ.get("BENCH_POLLERS", len(polled)))
    stats = asyncio.run(_run(url, seconds, polled, widgets, replier))
    with open(poll_file, "w") as f:
        json.dump(polled, f)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "w") as f:
        json.dump(
            {
                "entries": list(stats.entries.values()),
                "polls": dict(stats.outcomes),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            },
            f,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
