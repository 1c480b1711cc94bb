"""bench/pollers.py: the polling bench's widgets poll as widget.js does and report what Locust would."""

from __future__ import annotations

import asyncio
import json

from bench import pollers


def test_it_counts_latencies_in_locusts_buckets() -> None:
    stats = pollers.Stats()
    for ms in (42.4, 123.0, 1234.0):
        stats.add(pollers.POLL, 0.0, ms, failed=False)
    stats.add(pollers.POLL, 0.0, 42.6, failed=True)
    entry = stats.entries[pollers.POLL]
    assert entry["response_times"] == {42: 1, 43: 1, 120: 1, 1200: 1}
    assert (entry["num_requests"], entry["num_failures"]) == (4, 1)


def test_it_reads_a_chunked_body() -> None:
    assert pollers._dechunked(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n") == b"Wikipedia"


def test_a_widget_keeps_the_etag_and_newest_turn_and_sends_them_back() -> None:
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        seen.append(head)
        if 'If-None-Match: "v2"' in head:
            writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "v2"\r\nConnection: close\r\n\r\n')
        else:
            body = json.dumps({"messages": [{"id": "7"}], "handled_by": "human"}).encode()
            writer.write(b'HTTP/1.1 200 OK\r\nETag: "v2"\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
        await writer.drain()
        writer.close()

    async def run() -> tuple[dict[str, str], pollers.Stats]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        widget = {"id": "3", "token": "secret", "last_id": "5", "etag": '"v1"'}
        stats = pollers.Stats()
        async with server:
            await pollers._poll(widget, "127.0.0.1", port, stats, pollers.POLL)
            await pollers._poll(widget, "127.0.0.1", port, stats, pollers.POLL)
        return widget, stats

    widget, stats = asyncio.run(run())
    assert seen[0].startswith("GET /api/support/conversations/3/messages?after=5 HTTP/1.1")
    assert "X-Conversation-Token: secret" in seen[0] and 'If-None-Match: "v1"' in seen[0]
    assert seen[1].startswith("GET /api/support/conversations/3/messages?after=7 ")
    assert widget == {"id": "3", "token": "secret", "last_id": "7", "etag": '"v2"'}
    assert dict(stats.outcomes) == {"200": 1, "200 with turns": 1, "304": 1}
