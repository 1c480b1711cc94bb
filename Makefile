# Rezvo Support. `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests run with DEBUG on so no production-only redirects apply; Django's runner still turns DEBUG off per test.
TEST_ENV := DEBUG=true SECRET_KEY=test-only-not-secret

.PHONY: help venv dev install env migrate run serve try-production test test-mongo test-all lint typecheck format migrations check-migrations check-deploy fuzz bench bench-proxy bench-starvation bench-analytics bench-polling bench-memory bench-write-path bench-reads superuser clean browser-deps screenshots

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Two stamps: `make run` installs the runtime set only; tests, lint, fuzz and bench add the dev tools.
$(VENV)/.installed: requirements.txt | $(BIN)/activate
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed ## Create .venv and install the runtime requirements (requirements.txt)

dev: $(VENV)/.installed-dev ## Add the test, lint, fuzz and bench tools (requirements-dev.txt)

install: venv

.env:
	@echo "Writing .env for local development (DEBUG on, fresh SECRET_KEY)."
	@sed -e "s|^SECRET_KEY=.*|SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')|" \
	     -e "s|^DEBUG=.*|DEBUG=true|" .env.example > .env

env: venv .env

migrate: env ## Apply migrations to the configured database
	$(PY) manage.py migrate --no-input

run: migrate ## Create the venv, install, migrate and serve at http://127.0.0.1:8000 on SQLite, with the task queue's consumer
	@echo "Serving on http://$(HOST):$(PORT)/  (staff: \`make superuser\`, then /dashboard/ and /admin/)"
	@echo "Chat widget demo: http://$(HOST):$(PORT)/widget/demo/"
	@echo "Task queue: a Huey consumer (manage.py run_huey) runs beside the server; Ctrl+C stops both."
	@# One shell, so stopping make (Ctrl+C, or a signal to its process group) stops the consumer too.
	$(PY) manage.py run_huey & consumer=$$!; trap 'kill $$consumer 2>/dev/null; wait $$consumer' EXIT; \
	  $(PY) manage.py runserver $(HOST):$(PORT)

serve: migrate ## Serve with gunicorn and the production config (needs collectstatic under DEBUG=false; run `manage.py run_huey` beside it)
	$(BIN)/gunicorn -c gunicorn.conf.py rezvo_support.wsgi

# Production settings (DEBUG off, collected static files, gunicorn.conf.py) but plain HTTP on loopback:
# the HTTPS redirect, HSTS and secure-only cookies are off, so this is for a look on your own machine only.
TRY_ENV := DEBUG=false SECURE_SSL_REDIRECT=false SECURE_HSTS_SECONDS=0 SESSION_COOKIE_SECURE=false \
  CSRF_COOKIE_SECURE=false ALLOWED_HOSTS=127.0.0.1,localhost
# Collected (hashed, compressed) once, and again only when a static file or the requirements change.
staticfiles/staticfiles.json: $(shell find static -type f 2>/dev/null) requirements.txt | $(VENV)/.installed
	$(TRY_ENV) SECRET_KEY=collectstatic-only $(PY) manage.py collectstatic --no-input --verbosity 0

try-production: migrate staticfiles/staticfiles.json ## NOT FOR THE INTERNET: production mode on plain HTTP, http://127.0.0.1:8000 (collectstatic + gunicorn)
	@echo "=========================================================================================="
	@echo " try-production: DEBUG=false with gunicorn.conf.py, on PLAIN HTTP at http://127.0.0.1:$(PORT)/"
	@echo " The HTTPS redirect, HSTS and secure cookies are OFF. NOT FOR THE INTERNET: a real host puts"
	@echo " TLS in front and runs \`make serve\` with the production settings of .env.example."
	@echo "=========================================================================================="
	$(TRY_ENV) GUNICORN_BIND=127.0.0.1:$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py rezvo_support.wsgi

test: dev browser-deps ## The whole suite on SQLite
	$(TEST_ENV) $(PY) -m pytest

test-mongo: dev browser-deps ## The whole suite on MongoDB: MONGODB_URI if set, else a SecantusDB server started for the run
	$(TEST_ENV) $(PY) -m tests.mongo_server -- $(PY) -m pytest

test-all: test test-mongo

lint: dev ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: dev ## mypy with django-stubs and djangorestframework-stubs (0 errors, no blanket ignores)
	$(TEST_ENV) $(BIN)/mypy

format: dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# One `support` set serves both databases (support.fields.AutoPrimaryKey); on MongoDB the contrib apps
# use mongo_migrations/ (ObjectId keys), as django-mongodb-backend's docs advise.
migrations: dev ## Regenerate support/migrations (both databases) and the contrib apps' mongo_migrations/
	$(TEST_ENV) $(PY) manage.py makemigrations support
	$(TEST_ENV) $(PY) -m tests.mongo_server -- $(PY) manage.py makemigrations admin auth contenttypes sessions authtoken axes

check-migrations: dev ## Fail when a migration is stale on either database
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(PY) -m tests.mongo_server -- $(PY) manage.py makemigrations --check --dry-run

check-deploy: venv ## `manage.py check --deploy` under production settings
	DEBUG=false SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	  ALLOWED_HOSTS=support.example.com $(PY) manage.py check --deploy --fail-level WARNING

# CI size: fixed seed, bounded examples (well under 3 minutes). The long run is part of `make bench`.
FUZZ_SEED ?= 20260220
fuzz: dev ## Schemathesis against /api/schema/ as staff and as the widget (CI size, SQLite)
	$(PY) bench/fuzz.py --max-examples 25 --seed $(FUZZ_SEED)

bench: dev ## Load, ceiling, integrity, query counts and RSS on SQLite and MongoDB + the long fuzz run + worker memory -> docs/benchmarks.md
	@# Every bench runs and writes its section; the target fails at the end if any of them failed.
	@rc=0; \
	$(PY) bench/load.py --output docs/benchmarks.md || rc=1; \
	$(PY) bench/write_path.py || rc=1; \
	$(PY) bench/memory.py --output docs/benchmarks.md || rc=1; \
	$(PY) bench/reads.py --output docs/benchmarks.md || rc=1; \
	exit $$rc

bench-write-path: dev ## A pair into a 5,000-message vs a 10-message conversation (< 1.2x) and its round trips (<= 4 / 6 with a key), both legs (~3 min)
	$(PY) bench/write_path.py

bench-polling: dev ## 300 open widgets polling every 3 s vs the other endpoints' p95 (<= 1.5x), CPU per poll; SQLite and MongoDB (~3 min a leg)
	$(PY) bench/polling.py

bench-proxy: dev ## Chat proxy overhead under gunicorn vs the SDK direct, against a local fake Claude (< 2 min)
	$(PY) bench/proxy_overhead.py

bench-starvation: venv ## Slow chat streams (175 from 7 IPs; 120 from 6 IPs on 2 workers) vs a new visitor, /health, staff API (~8 min)
	$(PY) bench/starvation.py --output docs/benchmarks.md
	$(PY) bench/starvation.py --workers 2 --streams 120 --ips 6 --output docs/benchmarks.md

# Debian's chromium for the browser tests (Playwright drives it; never `playwright install`). Needs root.
CHROMIUM ?= /usr/bin/chromium
browser-deps: ## Install Debian's chromium (and fonts) for the browser tests when it is missing
	@if [ -x $(CHROMIUM) ]; then echo "chromium present: $$($(CHROMIUM) --version 2>/dev/null)"; else \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	    chromium fonts-dejavu-core fonts-liberation; fi

screenshots: dev browser-deps ## Re-take docs/screenshots/{queue,ticket,analytics,widget}.png for the README
	$(TEST_ENV) REZVO_SCREENSHOTS=docs/screenshots $(PY) -m pytest -m browser -q tests/e2e/test_browser.py
	WIDGET_SCREENSHOT=docs/screenshots/widget.png $(TEST_ENV) $(PY) -m pytest tests/e2e/test_widget_e2e.py -k screenshot -q

bench-analytics: dev ## Analytics latency at 10k and 1M messages on SQLite, side by side (a few minutes)
	$(PY) bench/analytics_scale.py

bench-reads: dev ## GET analytics?days=30 and GET tickets (50x10) at 2k conversations: p50/p95, MongoDB < 120 ms; command counts (issue 13)
	$(PY) bench/reads.py --output docs/benchmarks.md

superuser: env ## Create a staff login for /dashboard/ and /admin/
	$(PY) manage.py createsuperuser

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache

.PHONY: bench-retrieval
bench-retrieval: dev ## Knowledge-base retrieval at 2,000 articles: p95 < 20 ms, pick under SUPPORT_KB_PROMPT_TOKENS, top-3 >= 90% (issue 14)
	$(PY) bench/retrieval.py

bench-memory: dev ## Worker RSS after start and after 1,000..5,000 mixed requests (< 120 / < 130 MiB) + import cost per heavy package (~5 min)
	$(PY) bench/memory.py --output docs/benchmarks.md
