"""Production gunicorn settings; every value can be overridden with GUNICORN_* env vars."""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Threads, not just processes: a streamed Claude reply holds its thread for seconds, and the
# other threads keep /health and message logging answering meanwhile.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 16))
# Long enough for a full streamed reply (Claude timeout + margin); a stuck worker is still recycled.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 120))
graceful_timeout = 30
# A streamed chat reply holds its thread for as long as it lasts. gthread keeps accepting connections
# while it has fewer than `worker_connections` open, even with every thread busy, and queues the extra
# requests behind the streams, so a /health or message-logging call could wait seconds for a reply to
# end while another worker sat idle. With connections capped at the thread count, a worker whose threads
# are all busy stops accepting and the kernel hands new connections to a worker with a free thread.
# That leaves no slot for idle keep-alive connections, so keep-alive is off (a reverse proxy such as
# nginx speaks HTTP/1.0 to its upstream by default anyway; the cost is one local TCP handshake a request).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", threads))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 0))
# Recycle workers now and then so a slow leak can never take a host down.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
