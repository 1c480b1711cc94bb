"""gunicorn's threaded worker (gthread), except that closing a connection never stalls the worker.

Since gunicorn 26, a connection that does not stay open (with `keepalive = 0`, every one) is closed on the
worker's main thread with `util.close_graceful`: it half-closes, then waits up to 2 s for the client to close
its side. That thread is the one that accepts connections and hands them to the request threads, so while a
client (a browser, a load generator, a proxy) takes its time to close, the worker takes no new request.
Measured with a trivial app: a request answered in 4 ms took 1.4 s while one earlier client kept its socket
open; under `make bench-polling`, widgets' polls took 200-270 ms at the client and 16-25 ms in the app.

Here the half-close is the same (the client gets its FIN with the response), and the wait for the client's
side is left to the worker's poller: the socket is closed when the client closes or after LINGER_S.
"""

from __future__ import annotations

import gc
import selectors
import socket
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.workers import gthread

#: How long a half-closed connection may wait for the client to close its side (gunicorn's own 2 s).
LINGER_S = 2.0
#: Bytes drained from a lingering connection before it is closed anyway (gunicorn's own cap).
LINGER_MAX_BYTES = 65536


def objects_freeze() -> None:
    """In the master, just before the first fork: move every object loaded so far out of the collector's
    reach, so no worker's collection touches (and so copies) their pages.

    gc.freeze() leaves the collector's count of long-lived objects at what the last full collection found,
    and a full collection waits until a quarter of that count has been added since: with the whole app
    counted, no worker ran one for thousands of requests, and their cyclic garbage (2,539 messages and 151
    requests after 2,000 requests, measured in a worker) piled up meanwhile. One collection after the
    freeze, over nothing, resets that count."""
    gc.freeze()
    gc.collect()


class ThreadWorker(gthread.ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lingering: deque[tuple[float, socket.socket]] = deque()
        self.drained: dict[int, int] = {}

    def finish_request(self, conn: Any, fs: Any) -> None:
        # The base class closes a finished connection with conn.close(graceful=True): that one call,
        # on this connection, goes to close_soon instead. Every other step stays gunicorn's.
        close = conn.close

        def close_without_waiting(graceful: bool = False) -> None:
            if graceful:
                self.close_soon(conn.sock)
            else:
                close()

        conn.close = close_without_waiting
        super().finish_request(conn, fs)

    def close_soon(self, sock: socket.socket) -> None:
        """Half-close now; close when the client has closed its side, or after LINGER_S."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, partial(self.linger_readable, sock))
        except (OSError, ValueError, KeyError):
            _close(sock)
            return
        self.lingering.append((time.monotonic() + LINGER_S, sock))

    def linger_readable(self, sock: socket.socket, _client: Any) -> None:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        drained = self.drained.get(id(sock), 0) + len(data)
        if data and drained < LINGER_MAX_BYTES:
            self.drained[id(sock)] = drained
            return
        self.linger_end(sock)

    def linger_end(self, sock: socket.socket) -> None:
        self.drained.pop(id(sock), None)
        try:
            self.poller.unregister(sock)
        except (OSError, ValueError, KeyError):
            pass  # closed already
        _close(sock)

    def murder_pending(self) -> None:
        # Called on every turn of the worker's loop: also end the lingering connections whose time is up.
        super().murder_pending()
        now = time.monotonic()
        while self.lingering and (self.lingering[0][0] <= now or self.lingering[0][1].fileno() == -1):
            self.linger_end(self.lingering.popleft()[1])


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
