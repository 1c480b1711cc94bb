"""Production gunicorn settings; every value can be overridden with GUNICORN_* env vars.

Sizing: `workers` processes x `threads` threads serve requests at once. Most of a request's time
is spent waiting on the database, Redis or Claude, so threads are cheap concurrency; processes
give CPU parallelism (the GIL runs one thread's Python at a time per process). `make bench` runs
this file unchanged and reports throughput, latency and each worker's peak RSS
(docs/benchmarks.md), which is the figure to size a host by: RSS x workers must fit in memory.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Threads, not just processes: a streamed Claude reply holds its thread for seconds, and the
# other threads keep /health and message logging answering meanwhile.
worker_class = "gthread"
# The classic 2 x cores + 1: enough processes to keep every core busy while others wait on I/O.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# Requests each process serves at once; a streamed chat reply occupies one for its whole length.
threads = int(os.environ.get("GUNICORN_THREADS", 16))
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
