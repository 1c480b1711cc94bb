"""Production gunicorn settings; every value can be overridden with GUNICORN_* env vars.

Sizing: `workers` processes x `threads` threads serve requests at once. Most of a request's time
is spent waiting on the database, Redis or Claude, so threads are cheap concurrency; processes
give CPU parallelism (the GIL runs one thread's Python at a time per process). `make bench` runs
this file unchanged and reports throughput, latency and each worker's peak RSS
(docs/benchmarks.md), which is the figure to size a host by: RSS x workers must fit in memory.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import threading
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Threads, not just processes: a streamed Claude reply holds its thread for seconds, and the
# other threads keep /health and message logging answering meanwhile. gunicorn's gthread, except that a
# client slow to close a finished connection cannot stall the worker (gunicorn 26+ waits for it on the
# thread that accepts connections; rezvo_support/gunicorn_worker.py).
worker_class = "rezvo_support.gunicorn_worker.ThreadWorker"
# One process per core. The threads already carry the waits on I/O, so gunicorn's classic 2 x cores + 1
# (meant for sync workers) only adds processes that take the CPU from each other: measured on 2 vCPUs
# (`make bench-polling`, SQLite), the other endpoints' p95 grew 1.85x beside 300 polling widgets with 5
# processes and 1.27x with 2, and the workers' own p95 for them 1.48x and 1.03x.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
# Requests each process serves at once; a streamed chat reply occupies one for its whole length. 32, with
# one process a core, keeps a 2-core host's chat capacity near what 5 processes of 16 gave (48 replies at
# once; with 16, `make bench`'s 24 users already got 429 server_busy on 2 workers).
threads = int(os.environ.get("GUNICORN_THREADS", 32))
# A worker silent for this long is killed and replaced. Long enough for a full streamed reply
# (SUPPORT_CLAUDE_TIMEOUT_S + margin); a stuck worker is still recycled.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 120))
# On SIGTERM (deploy, systemd stop) in-flight requests get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
# A streamed chat reply holds its thread for as long as it lasts. gthread keeps accepting connections
# while it has fewer than `worker_connections` open, even with every thread busy, and queues the extra
# requests behind the streams, so a /health or message-logging call could wait seconds for a reply to
# end while another worker sat idle. With connections capped at the thread count, a worker whose threads
# are all busy stops accepting and the kernel hands new connections to a worker with a free thread.
# That leaves no slot for idle keep-alive connections, so keep-alive is off (a reverse proxy such as
# nginx speaks HTTP/1.0 to its upstream by default anyway; the cost is one local TCP handshake a request).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", threads))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 0))
# Recycle each worker after this many requests (+ jitter, so they do not all restart together)
# so a slow leak can never take a host down.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = 500
# The app already writes one JSON line per request (rezvo_support/request_log.py), so
# gunicorn's own access log is off unless asked for ("-" = stdout).
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
# Longest request line (method + URL) accepted; gunicorn's default, 4094 bytes, is less than a staff
# search of 200 non-Latin characters plus filters once percent-encoded (12 bytes a character), which
# would get gunicorn's own HTML 414 page instead of the API's JSON. 8190 is gunicorn's maximum and
# matches nginx's default header buffer.
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", 8190))
# Only the local proxy may set X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# --- Memory (issue 13; `make bench-memory` measures it) -----------------------------------------
# The app (Django, every view module and the URLconf) is loaded once, in the master, and the workers are
# forked from it: their copies of those pages are shared until written. RSS still counts shared pages in
# every worker; PSS (bench/memory.py prints both) shows the saving. Off: each worker loads its own copy.
# With it on, HUP forks new workers from the code the master already holds: deploy new code with a restart.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() in ("1", "true", "yes", "on")
# With Claude configured, every worker imports the anthropic SDK (about 50 MiB, 3,000 modules) on its first
# chat turn, which comes within its first few dozen requests. Imported once in the master instead, it is
# shared: RSS is about the same (it counts the shared pages), PSS and the host's memory ~50 MiB less a worker.
preload_sdk = os.environ.get("GUNICORN_PRELOAD_SDK", "true").lower() in ("1", "true", "yes", "on")
# glibc gives each thread that contends for malloc an arena of its own (up to 8 per core), and memory freed
# in one arena is not reused by another: with 16 threads a worker's RSS kept climbing. Two arenas hold it
# (measured: about 5 MiB less per worker after 1,000 mixed requests, the same throughput). Set here, in the
# master, before any thread exists, so every worker inherits it; MALLOC_ARENA_MAX in the environment wins.
M_ARENA_MAX = -8
malloc_arenas = int(os.environ.get("MALLOC_ARENA_MAX") or os.environ.get("GUNICORN_MALLOC_ARENAS", "2"))
try:
    ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, malloc_arenas)
except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator has no such knob
    pass


def when_ready(server: Any) -> None:
    """In the master, after the app loaded and before the first fork: finish loading what every worker
    needs, and leave nothing that cannot cross a fork (an open database connection, a thread)."""
    if not preload_app:
        return
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the URLconf and every view module, loaded once for all workers
    if preload_sdk:
        from support.bot import claude

        if claude.claude_configured():
            claude.sdk_load()
    _close_connections()
    others = [thread.name for thread in threading.enumerate() if thread is not threading.main_thread()]
    if others:  # a forked worker would have none of them: a bug to fix where the thread is started
        logging.getLogger("gunicorn.error").warning("threads running in the master before fork: %s", others)
    # What is loaded now lives as long as the process: keep the collector from touching (and so copying)
    # those pages in every worker.
    from rezvo_support.gunicorn_worker import objects_freeze

    objects_freeze()


def post_fork(server: Any, worker: Any) -> None:
    # Belt and braces: nothing the master may have opened since when_ready is used by two processes.
    if preload_app:
        _close_connections()


def _close_connections() -> None:
    from huey.contrib.djhuey import HUEY

    from support import db

    db.connections_close_all()
    # Huey's SQLite storage opens a connection to create its schema when the app loads.
    close_storage = getattr(HUEY.storage, "close", None)
    if close_storage is not None:
        close_storage()
