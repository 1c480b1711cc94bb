"""Settings for Rezvo Support: every value that differs between machines comes from the environment.

See `.env.example` for each variable. `MONGODB_URI` switches the database from the embedded
SQLite default to MongoDB (django-mongodb-backend, ObjectId primary keys, `mongo_migrations/`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from rezvo_support.env import (
    dotenv_skipped,
    env_bool,
    env_business_hours,
    env_choice,
    env_decimal,
    env_float,
    env_hex_colour,
    env_int,
    env_list,
    env_str,
    load_dotenv,
)
from rezvo_support.log_config import logging_config
from rezvo_support.task_queue import huey_settings

BASE_DIR = Path(__file__).resolve().parent.parent
if not dotenv_skipped():
    load_dotenv(BASE_DIR / ".env")

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (see .env.example; `make run` writes a .env for development)."
        )
    # Development only: DEBUG is on, so nothing signed with this key is worth protecting.
    SECRET_KEY = "django-insecure-development-only-key-not-for-production-use-0123456789"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

MONGODB_URI = env_str("MONGODB_URI")
USE_MONGODB = bool(MONGODB_URI)

if USE_MONGODB:
    _CONTRIB_APPS = [
        "rezvo_support.mongo_apps.MongoAdminConfig",
        "rezvo_support.mongo_apps.MongoAuthConfig",
        "rezvo_support.mongo_apps.MongoContentTypesConfig",
        "rezvo_support.mongo_apps.MongoAxesConfig",
    ]
else:
    _CONTRIB_APPS = [
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "axes",
    ]

INSTALLED_APPS = [
    *_CONTRIB_APPS,
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "csp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "support",
    "huey.contrib.djhuey",
]
if USE_MONGODB:
    INSTALLED_APPS.append("django_mongodb_backend")

MIDDLEWARE = [
    # First, so its latency covers the whole stack; one JSON line per request (see request_log.py).
    "rezvo_support.request_log.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "support.api.poll_fast.PollNotModifiedMiddleware",  # a widget's unchanged poll: a 304 with CORS, no CSP
    "csp.middleware.CSPMiddleware",  # after WhiteNoise: widget.js and widget.css, embedded elsewhere, need none
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "rezvo_support.security.NoStoreMiddleware",
    # Last, as django-axes asks: turns a login refused for a locked-out username+IP into its lockout page.
    "axes.middleware.AxesMiddleware",
]

# Only the benchmark swaps this (bench/urls.py adds its ceiling view); production never sets it.
ROOT_URLCONF = env_str("ROOT_URLCONF", "rezvo_support.urls")
WSGI_APPLICATION = "rezvo_support.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------------
if USE_MONGODB:
    DATABASES: dict[str, dict[str, Any]] = {
        "default": {
            "ENGINE": "django_mongodb_backend",
            "HOST": MONGODB_URI,
            "NAME": env_str("MONGODB_NAME", "rezvo_support"),
            "OPTIONS": {
                # Fail fast so /health can report a dead database instead of hanging for 30 s.
                "serverSelectionTimeoutMS": env_int("MONGODB_TIMEOUT_MS", 5000, minimum=100),
            },
        }
    }
    DEFAULT_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"
    # The contrib apps' own migrations use integer keys: these copies use ObjectIds (django-mongodb-backend's
    # advice). `support` is not here: its one set serves both databases (support/fields.py).
    MIGRATION_MODULES = {
        "admin": "mongo_migrations.admin",
        "auth": "mongo_migrations.auth",
        "contenttypes": "mongo_migrations.contenttypes",
        "sessions": "mongo_migrations.sessions",
        "authtoken": "mongo_migrations.authtoken",
        "axes": "mongo_migrations.axes",
    }
else:
    DATABASES = {
        "default": {
            # Django's SQLite, but a missing or replaced file is an error, never a new empty database.
            "ENGINE": "rezvo_support.sqlite_file",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # WAL: readers proceed during a write. IMMEDIATE: a transaction takes the write lock at its start.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                f"PRAGMA cache_size=-{env_int('SQLITE_CACHE_KIB', 256, minimum=64)};",
                "transaction_mode": "IMMEDIATE",
                "timeout": env_int("SQLITE_BUSY_TIMEOUT_S", 20, minimum=1),
                # Prepared statements a connection (one a thread) keeps; Python's 128 held ~11 MiB more a worker.
                "cached_statements": env_int("SQLITE_CACHED_STATEMENTS", 16, minimum=0),
            },
            # A file, not :memory:, so concurrency tests hit the same locking as production.
            "TEST": {"NAME": str(BASE_DIR / "var" / "test.sqlite3")},
            # Keep each worker thread's connection between requests (gunicorn's threads live long): opening one
            # (connect, SQL functions, PRAGMAs, the schema parse) cost about as much as the rest of a chat
            # request's database work. Off under DEBUG (runserver: a thread a request). MongoDB: one pooled client.
            "CONN_MAX_AGE": env_int("SQLITE_CONN_MAX_AGE", 0 if DEBUG else 600, minimum=0),
        }
    }
    DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared by all workers: DRF throttles live here) ---------------------------------
REDIS_URL = env_str("REDIS_URL")
# A Redis that is down or stuck must not slow every request: each call waits at most these timeouts,
# and after 3 timeouts in a row or a refused connection the cache skips Redis for REDIS_BREAKER_S s, so
# callers fall back at once (throttles let traffic through, the spend figure is read from the database).
# Anything else that talks to Redis should use the same two timeouts.
REDIS_CONNECT_TIMEOUT_S = env_float("REDIS_CONNECT_TIMEOUT_S", 0.05, minimum=0.001)
REDIS_SOCKET_TIMEOUT_S = env_float("REDIS_SOCKET_TIMEOUT_S", 0.05, minimum=0.001)
REDIS_BREAKER_S = env_float("REDIS_BREAKER_S", 5.0, minimum=0)
REDIS_CACHE_OPTIONS = {
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
    "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
    "breaker_seconds": REDIS_BREAKER_S,
}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "rezvo_support.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "rezvo"),
            "OPTIONS": REDIS_CACHE_OPTIONS,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env_str("CACHE_DIR", str(BASE_DIR / "var" / "cache")),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# MongoDB stores datetimes in UTC only; keep both databases identical.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Tests and `runserver` serve files straight from the finders; no collectstatic needed there.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Login lockout (django-axes) -------------------------------------------------------------
# Every staff login (/accounts/login/, /admin/login/) passes through axes first: after
# AXES_FAILURE_LIMIT failed attempts for one username from one IP, that pair is refused (429, even with
# the right password) until AXES_COOLOFF_MINUTES have passed since the last failure. Other accounts and
# the same account from elsewhere are unaffected, so a guesser cannot lock staff out from afar.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client IP as the rate limits see it (REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies).
AXES_CLIENT_IP_CALLABLE = "rezvo_support.security.client_ip"
AXES_VERBOSE = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "login"

# --- Security -------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env_bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Content-Security-Policy (django-csp) on every page we render: the dashboard, login, admin and the widget
# demo. Scripts and styles come only from our own files (no inline code, no 'unsafe-inline'), so an
# injected <script> or style attribute does nothing. Swagger UI (/api/docs/) boots from an inline script
# and is left out; it shows only the public schema.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/docs/"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Paths a load balancer probes over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
# Bodies beyond this are refused before parsing (413 from Django's request limits).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024, minimum=1024)

# --- CORS (the widget runs on customers' sites) ---------------------------------------------
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/support/.*$"
CORS_ALLOW_HEADERS = (
    "accept",
    "content-type",
    "x-conversation-token",
    "idempotency-key",
    "if-none-match",  # the widget's poll (GET conversations/{id}/messages) answers 304 when nothing changed
)
CORS_EXPOSE_HEADERS = ("retry-after", "etag")

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PARSER_CLASSES": ["support.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "support.api.exceptions.exception_handler",
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Rezvo Support API",
    "DESCRIPTION": "AI support desk: widget conversations, Claude usage and cost, staff ticket review.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Issue 13 (worker memory): applies the views' @extend_schema, recorded so that serving the API never
    # loads the generator (support/api/openapi.py).
    "DEFAULT_GENERATOR_CLASS": "support.api.schema.SchemaGenerator",
    # The prefix drf_spectacular used to guess from every path, the schema view's included, which the tags
    # ("support") come from; the schema view is now loaded on demand and no longer among the API's views.
    "SCHEMA_PATH_PREFIX": "/api",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "support.api.openapi.inline_staff_or_widget",
    ],
}

# --- Support desk ---------------------------------------------------------------------------
SUPPORT_DEFAULT_MODEL = env_str("SUPPORT_DEFAULT_MODEL", "claude-haiku-4-5")
SUPPORT_MAX_MESSAGE_CHARS = env_int("SUPPORT_MAX_MESSAGE_CHARS", 32000, minimum=1)
SUPPORT_EMAIL = env_str("SUPPORT_EMAIL", "support@rezvo.co.uk")
# When a person answers escalated tickets (support/business_hours.py has the format); unset: always open.
SUPPORT_BUSINESS_HOURS = env_business_hours("SUPPORT_BUSINESS_HOURS", "")
# A person's first reply to an escalated ticket is due this many business minutes after the escalation.
SUPPORT_FIRST_RESPONSE_MINUTES = env_int("SUPPORT_FIRST_RESPONSE_MINUTES", 60, minimum=1)
# Per client IP, and one IP is often a whole office or thousands of phones behind a carrier's NAT, so these
# are sized for a shared address (Chatwoot moved its widget's new-conversation limit from 6 per 12 hours per IP
# to 30 a minute after blocking real visitors). Spend is bounded per conversation and by the daily budget.
SUPPORT_THROTTLE_IP_RATE = env_str("SUPPORT_THROTTLE_IP_RATE", "600/min")
SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE = env_str("SUPPORT_THROTTLE_CONVERSATION_CREATE_RATE", "30/min")
SUPPORT_THROTTLE_CONVERSATION_RATE = env_str("SUPPORT_THROTTLE_CONVERSATION_RATE", "30/min")
# Where the throttles count (a `limits` storage URI): Redis when REDIS_URL is set, else a SQLite file under
# var/ that every worker process on this machine shares (support/limiter.py says why not memory://).
SUPPORT_RATE_LIMIT_STORAGE = env_str(
    "SUPPORT_RATE_LIMIT_STORAGE", REDIS_URL or f"sqlite:///{BASE_DIR / 'var' / 'ratelimits.sqlite3'}"
)
# $25 a day: about 6,000 ordinary Haiku turns (a few tenths of a cent each), far above what a small venue
# platform's widget uses, and at most ~$750 a month if someone scripts it. README "Limits" says more.
SUPPORT_DAILY_BUDGET_USD = env_decimal("SUPPORT_DAILY_BUDGET_USD", "25")
# Whether the widget may log turns itself (POST conversations/{id}/messages with its conversation token):
# "off" (403; only the chat proxy and staff write turns) or "seed" (the seed widget's flow, for sites that
# call Claude from the browser: its usage is unverified, capped at the model's limits and reported apart).
SUPPORT_CLIENT_LOGGING = env_choice("SUPPORT_CLIENT_LOGGING", "off", ("off", "seed"))
SUPPORT_IDEMPOTENCY_TTL_HOURS = env_int("SUPPORT_IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
# A request holding an Idempotency-Key longer than this is taken to be dead, and a retry with the
# key runs it again (only where turns are written in one transaction: SQLite, a MongoDB replica set).
# Longer than any real request: the gunicorn timeout (120 s) plus a margin.
SUPPORT_IDEMPOTENCY_LEASE_S = env_int("SUPPORT_IDEMPOTENCY_LEASE_S", 150, minimum=1)

# --- Verified identity (issue 15) ----------------------------------------------------------
# The embedding site's server signs each user: user_hash = HMAC-SHA256(SUPPORT_IDENTITY_SECRET, user_id), hex.
# Never sent to the browser. Empty: no conversation can be verified (every identity stays a claim).
SUPPORT_IDENTITY_SECRET = env_str("SUPPORT_IDENTITY_SECRET", "")
# true: a new conversation that names anyone (user_id, business_id, audience, email or name) must carry a valid
# user_hash, else 400; false: it is stored unverified and staff see it marked so.
SUPPORT_REQUIRE_IDENTITY = env_bool("SUPPORT_REQUIRE_IDENTITY", default=False)
if SUPPORT_REQUIRE_IDENTITY and not SUPPORT_IDENTITY_SECRET:
    raise ImproperlyConfigured("SUPPORT_REQUIRE_IDENTITY=true needs SUPPORT_IDENTITY_SECRET")
# How many of a verified customer's earlier conversations the ticket page and the widget list.
SUPPORT_IDENTITY_HISTORY_LIMIT = env_int("SUPPORT_IDENTITY_HISTORY_LIMIT", 20, minimum=1)

# The embeddable chat widget's defaults (GET /api/support/widget/config); the script tag's data-* attributes win.
SUPPORT_WIDGET_TITLE = env_str("SUPPORT_WIDGET_TITLE", "Rezvo Support")
SUPPORT_WIDGET_GREETING = env_str(
    "SUPPORT_WIDGET_GREETING",
    "Hi! I'm the Rezvo assistant. Ask me anything about bookings, pricing or your account.",
)
# Separated by "|" because questions contain commas.
SUPPORT_WIDGET_QUICK_QUESTIONS = env_list(
    "SUPPORT_WIDGET_QUICK_QUESTIONS",
    ["How much does Rezvo cost?", "How do I get started?", "I'd like to talk to a person"],
    sep="|",
)
SUPPORT_WIDGET_PRIMARY_COLOUR = env_hex_colour("SUPPORT_WIDGET_PRIMARY_COLOUR", "#0f766e")
SUPPORT_WIDGET_POSITION = env_choice("SUPPORT_WIDGET_POSITION", "right", ("right", "left"))
SUPPORT_WIDGET_CONFIG_MAX_AGE_S = env_int("SUPPORT_WIDGET_CONFIG_MAX_AGE_S", 300, minimum=0)

SUPPORT_PRODUCT_NAME = env_str("SUPPORT_PRODUCT_NAME", "Rezvo")

# --- Chat proxy (issue 3) -------------------------------------------------------------------
# Claude: the SDK's own variables. Unset key: the offline knowledge-base responder answers every message.
# Unset base URL: Anthropic's default endpoint. Both are passed to the SDK explicitly so one settings
# object decides (tests point the base URL at a local fake server).
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL")
SUPPORT_CLAUDE_MODEL = env_str("SUPPORT_CLAUDE_MODEL", "claude-haiku-4-5")
SUPPORT_CLAUDE_MAX_TOKENS = env_int("SUPPORT_CLAUDE_MAX_TOKENS", 1024, minimum=1)
# No temperature setting: the SDK (2.x) sends API version 2026-10-21, which has no sampling parameters
# (temperature/top_p/top_k are refused with a 400, even at their defaults), and the SDK no longer offers them.
# The SDK retries 408/409/429/5xx and connection errors this many times...
SUPPORT_CLAUDE_MAX_RETRIES = env_int("SUPPORT_CLAUDE_MAX_RETRIES", 2, minimum=0)
# ...all within this many seconds from the call until Claude's reply starts; then the offline responder answers.
SUPPORT_CLAUDE_TIMEOUT_S = env_float("SUPPORT_CLAUDE_TIMEOUT_S", 30.0, minimum=0.1)
# Longest silence tolerated once the reply is streaming; past it the partial reply is stored and closed.
SUPPORT_CLAUDE_STALL_TIMEOUT_S = env_float("SUPPORT_CLAUDE_STALL_TIMEOUT_S", 20.0, minimum=0.1)
# History sent with each message: at most this many recent turns (a turn is one message, either side)...
SUPPORT_CHAT_HISTORY_TURNS = env_int("SUPPORT_CHAT_HISTORY_TURNS", 20, minimum=1)
# ...and at most this many tokens of them, counted as UTF-8 bytes (never fewer than tokens); the newest are kept.
SUPPORT_CHAT_HISTORY_TOKENS = env_int("SUPPORT_CHAT_HISTORY_TOKENS", 8000, minimum=1)
# Turns (messages, either side) one conversation may hold; each chat call adds two. Past it: 429 max_turns.
SUPPORT_CHAT_MAX_TURNS = env_int("SUPPORT_CHAT_MAX_TURNS", 100, minimum=2)
# Concurrent chat replies (each holds a thread while Claude writes; support/api/stream_slots.py). Per worker
# process: the gunicorn thread count minus a reserve (a quarter, at least 2) kept for /health, staff and
# message logging. Per client IP across all workers: beyond it, 429 `streams_per_ip`.
_GUNICORN_THREADS = env_int("GUNICORN_THREADS", 32, minimum=1)  # gunicorn.conf.py's default
SUPPORT_STREAMS_PER_WORKER = env_int(
    "SUPPORT_STREAMS_PER_WORKER", max(_GUNICORN_THREADS - max(_GUNICORN_THREADS // 4, 2), 1), minimum=1
)
SUPPORT_STREAMS_PER_IP = env_int("SUPPORT_STREAMS_PER_IP", 4, minimum=1)
# Of a worker's stream slots, this many are kept for addresses with no other reply running (new visitors).
SUPPORT_STREAMS_FIRST_RESERVE = env_int("SUPPORT_STREAMS_FIRST_RESERVE", SUPPORT_STREAMS_PER_WORKER // 3, minimum=0)
# A stream's per-IP slot expires after this long even if its worker died holding it (gunicorn timeout + margin).
SUPPORT_STREAM_LEASE_S = env_int("SUPPORT_STREAM_LEASE_S", 150, minimum=1)
# Without REDIS_URL the per-IP counts live in this SQLite file, shared by the workers of one host.
SUPPORT_STREAM_SLOTS_PATH = env_str("SUPPORT_STREAM_SLOTS_PATH", str(BASE_DIR / "var" / "stream-slots.sqlite3"))
# After Claude has answered, storing the reply is retried (with backoff) for this long while the database
# is unavailable or locked; past it the stream ends with an `error` event and a same-key retry resumes.
SUPPORT_CHAT_STORE_RETRY_S = env_float("SUPPORT_CHAT_STORE_RETRY_S", 15.0, minimum=0.0)

# --- Telling people: mail, webhooks, the task queue (issue 12) -------------------------------
# Mail goes through Django's email framework: SMTP when EMAIL_HOST is set, else the console backend (the
# message is printed to the log; development, and a host that has no mail relay yet).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
# A stuck mail server holds a task-queue worker, never a request; still, give up after this long.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_S", 10, minimum=1)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", SUPPORT_EMAIL)
# Who hears of an escalation nobody is assigned to (an assigned ticket mails its assignee).
SUPPORT_NOTIFY_EMAILS = env_list("SUPPORT_NOTIFY_EMAILS")
# The address staff open from a notification mail (links to /dashboard/...); no trailing slash.
SUPPORT_SITE_URL = env_str("SUPPORT_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Webhook receivers must use https; plain http only for local relays and tests.
SUPPORT_WEBHOOKS_ALLOW_HTTP = env_bool("SUPPORT_WEBHOOKS_ALLOW_HTTP", default=False)
# One delivery attempt waits at most this long for the receiver (in a task-queue worker, never a request).
SUPPORT_WEBHOOKS_TIMEOUT_S = env_float("SUPPORT_WEBHOOKS_TIMEOUT_S", 5.0, minimum=0.1)
# A failing delivery is retried with exponential backoff (30 s, 1 min, 2 min, ...) for this long, then dropped.
SUPPORT_WEBHOOKS_RETRY_HOURS = env_int("SUPPORT_WEBHOOKS_RETRY_HOURS", 24, minimum=1)

# Huey (huey.contrib.djhuey): the task queue that sends mail and webhooks off the request path. Run its
# consumer beside the web server (`make run` does; deploy/rezvo-support-tasks.service in production).
# A SQLite file under var/ on the embedded default (nothing to install); Redis when REDIS_URL is set.
HUEY = huey_settings(
    name=env_str("HUEY_NAME", "rezvo-tasks"),
    # True runs each task inline where it is enqueued (debugging only: a slow receiver then slows requests).
    immediate=env_bool("HUEY_IMMEDIATE", default=False),
    workers=env_int("HUEY_WORKERS", 2, minimum=1),
    redis_url=REDIS_URL,
    sqlite_path=env_str("HUEY_SQLITE_PATH", str(BASE_DIR / "var" / "huey.sqlite3")),
)

LOGGING = logging_config(level=env_str("LOG_LEVEL", "INFO"), request_log=env_bool("REQUEST_LOG", default=True))

# --- Retention and erasure (issue 15) --------------------------------------------------------
# Conversations (with their messages, events and notes) older than this many days are deleted by a daily
# task (support.tasks.conversations_retention_purge) and by `manage.py purge`. Unset or 0: kept for ever.
# Analytics keep counting deleted conversations (README "Data handling").
SUPPORT_RETENTION_DAYS: int | None = env_int("SUPPORT_RETENTION_DAYS", 0, minimum=0) or None

# --- Citations, knowledge gaps and retrieval (issue 14) --------------------------------------
# While every active article fits in this many tokens (counted as UTF-8 bytes / 4, a generous estimate) the
# whole knowledge base is sent, once, as one cached block; past it BM25 picks the best articles per question.
SUPPORT_KB_PROMPT_TOKENS = env_int("SUPPORT_KB_PROMPT_TOKENS", 20000, minimum=1)
# Past the budget: at most this many articles per question (fewer when they would not fit the budget).
SUPPORT_KB_RETRIEVAL_TOP_K = env_int("SUPPORT_KB_RETRIEVAL_TOP_K", 5, minimum=1)
# Two failed questions whose normalised words match at least this well (rapidfuzz token_set_ratio, 0-100)
# are one knowledge gap.
SUPPORT_GAP_SIMILARITY = env_int("SUPPORT_GAP_SIMILARITY", 70, minimum=1)

# --- Honest outcomes and bot checks (issue 14) ----------------------------------------------
# A conversation with a substantive answer, no escalation and no thumbs-down is "assumed" resolved once
# this many hours pass after its latest turn without the customer coming back (support/outcomes.py).
SUPPORT_RESOLUTION_WINDOW_HOURS = env_int("SUPPORT_RESOLUTION_WINDOW_HOURS", 24, minimum=1)
