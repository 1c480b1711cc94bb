"""A local webhook receiver for tests: verifies every request's Standard Webhooks signature (with the
`standardwebhooks` package, as a real receiver would) and answers from a script of status codes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    event: str
    verified: bool
    status: int
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    secret: str = ""
    #: Status codes to answer, in order; after the script, 200.
    script: list[int] = field(default_factory=list)
    #: Answer 500 to the first this-many requests of each webhook-id (each event's retries), then the script.
    fail_first: int = 0
    #: Seconds to wait before answering (a hanging receiver).
    delay: float = 0.0
    #: Requests that arrived, counted before any delay (`received` is filled once answered).
    arrived: int = 0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answered_ok(self) -> list[Received]:
        return [item for item in self.received if 200 <= item.status < 300]


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            with receiver.lock:
                receiver.arrived += 1
            body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
            payload, verified = json.loads(body or "{}"), False
            if receiver.secret:  # without a secret the test checks something else: answer the script
                try:
                    payload, verified = Webhook(receiver.secret).verify(body, dict(self.headers.items())), True
                except WebhookVerificationError:
                    pass
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.script.pop(0) if receiver.script else 200
            webhook_id = self.headers.get("webhook-id", "")
            if receiver.secret and not verified:
                status = 401
            with receiver.lock:  # one request per id at a time counts its earlier ones
                if sum(1 for item in receiver.received if item.webhook_id == webhook_id) < receiver.fail_first:
                    status = 500
                receiver.received.append(Received(webhook_id, payload.get("type", ""), verified, status, payload))
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"nope")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver(secret: str = "", port: int = 0, **options: Any) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret=secret, **options)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
