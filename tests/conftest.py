from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from huey.contrib.djhuey import HUEY
from huey.storage import MemoryStorage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from support import services
from support.limiter import rate_limits_reset
from support.models import Conversation
from support.selectors.prices import prices_table_forget

ON_SECANTUS = os.environ.get("MONGODB_SERVER_KIND") == "secantus"

if os.environ.get("MONGODB_URI"):
    from tests.fakes.commands import listen

    # Before the test database is connected: tests/fakes/commands.py counts the wire commands of a block.
    listen()

# Settings already skipped the developer's .env in this process (pytest is loaded); servers and
# commands the tests start inherit this and skip it too.
os.environ["REZVO_SKIP_DOTENV"] = "true"

# Production waits at most 50 ms for Redis (REDIS_SOCKET_TIMEOUT_S) and then skips it for a few seconds.
# The suite shares two cores with browsers and servers, where a healthy local Redis can miss 50 ms, and a
# miss would skip a throttle that a test counts on; so the suite waits up to 1 s. The 50 ms behaviour is
# tested with its own settings in tests/platform/test_cache_breaker.py.
if settings.CACHES["default"]["BACKEND"] == "rezvo_support.cache.RedisCache":
    settings.CACHES["default"]["OPTIONS"] = {
        **settings.CACHES["default"]["OPTIONS"],
        "socket_connect_timeout": 1,
        "socket_timeout": 1,
    }

# The task queue runs each task inline, in memory, where it is queued: a test sees a notification's mail and
# webhooks at once, and no test leaves work in the developer's var/huey.sqlite3 or in Redis. Tests of the
# queue itself use `task_queue` below, or a real consumer (tests/platform/test_task_queue.py).
HUEY.immediate = True
# Servers and commands the tests start do the same (tests/platform/test_task_queue.py starts a real consumer
# without it).
os.environ["HUEY_IMMEDIATE"] = "true"

# The SQLite test database is a file under var/ (see settings); a clean clone has no var/ yet.
(Path(__file__).resolve().parent.parent / "var").mkdir(exist_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, by name and reason, tests that need real-MongoDB behaviour SecantusDB lacks."""
    for item in items:
        marker = item.get_closest_marker("secantus_differs")
        if marker and ON_SECANTUS:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"secantus_differs: {reason}"))


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters live in the rate-limit store, the spend figure in the cache; no test inherits another's."""
    cache.clear()
    with suppress(Exception):  # a test of an unreachable store must not break the others' setup
        rate_limits_reset()
    yield
    cache.clear()
    with suppress(Exception):
        rate_limits_reset()


@pytest.fixture(autouse=True)
def _prices(request: pytest.FixtureRequest) -> None:
    # MongoDB has no test transactions, so each test flushes the price rows migrate seeded. A flush sends no
    # signal, so the process's copy of the price table (selectors.prices) is dropped here too.
    prices_table_forget()
    if "db" in request.fixturenames or "transactional_db" in request.fixturenames:
        services.model_price_ensure_defaults()


@pytest.fixture
def on_mongodb() -> bool:
    return connection.vendor == "mongodb"


@pytest.fixture
def staff_user(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(
        username="agent", password="correct-horse-battery", is_staff=True, email="agent@example.com"
    )


@pytest.fixture
def other_staff(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="lead", password="correct-horse-battery", is_staff=True)


@pytest.fixture
def customer_user(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="customer", password="correct-horse-battery")


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def staff(staff_user: Any) -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=staff_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def make_conversation(db: None) -> Callable[..., tuple[Conversation, str]]:
    def make(**kwargs: Any) -> tuple[Conversation, str]:
        return services.conversation_create(**kwargs)

    return make


@pytest.fixture
def widget(anon: APIClient) -> Callable[[str], APIClient]:
    """A client that carries one conversation's secret, as the embedded widget does."""

    def for_token(token: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_CONVERSATION_TOKEN=token)
        return client

    return for_token


# --- Browser tests (@pytest.mark.browser): Debian's chromium driven by playwright ----------------
# `make browser-deps` installs /usr/bin/chromium; playwright's own browser download is never used.
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module scope: pytest-django runs non-database tests last, and they must not inherit the running playwright
# loop or DJANGO_ALLOW_ASYNC_UNSAFE (check --deploy rejects it), so both end with each browser test module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (browser tests drive Debian's chromium).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API parks an asyncio loop on this thread, which trips Django's async-safety check
    # for every ORM call the test makes; nothing here really runs ORM code inside a coroutine.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context: Any) -> Any:
    return browser_context.new_page()


@pytest.fixture
def task_queue() -> Iterator[Any]:
    """The task queue as in production (tasks wait for a consumer), in memory; back to inline afterwards."""
    HUEY.immediate = False
    HUEY.storage = MemoryStorage(HUEY.name)
    try:
        yield HUEY
    finally:
        HUEY.immediate = True
        HUEY.storage = MemoryStorage(HUEY.name)
