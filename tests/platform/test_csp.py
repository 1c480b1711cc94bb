"""Content-Security-Policy: our pages run under a strict policy, and the widget works on a strict host page."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client

from support.models import Conversation
from tests.e2e.test_widget_e2e import ask, claude, wait_for_reply
from tests.fakes.desk import build_desk
from tests.fakes.fake_claude import FakeClaude, Reply

__all__ = ["claude"]  # a fixture, imported for the browser test below

STAFF_PAGES = ["/dashboard/", "/dashboard/conversations/", "/dashboard/analytics/", "/admin/"]
PUBLIC_PAGES = ["/accounts/login/", "/admin/login/", "/widget/demo/"]


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.fixture
def staff_browser(staff_user: Any) -> Client:
    staff_user.is_superuser = True
    staff_user.save()
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("url", STAFF_PAGES + PUBLIC_PAGES)
def test_pages_carry_a_strict_policy_without_unsafe_inline(staff_browser: Client, url: str) -> None:
    response = (staff_browser if url in STAFF_PAGES else Client()).get(url)
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    for name in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in policy.get(name, policy["default-src"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]


@pytest.mark.django_db
def test_the_widget_demo_has_no_inline_script_or_style(client: Client) -> None:
    html = client.get("/widget/demo/").content.decode()
    assert "<style" not in html
    assert " style=" not in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert " src=" in tag, tag


# --- In the browser: no CSP violation anywhere, and the widget on a strict host page -------------
def violations(page: Any) -> list[str]:
    found: list[str] = []

    def record(message: Any) -> None:
        if "Content Security Policy" in message.text:
            found.append(f"{page.url}: {message.text}")

    page.on("console", record)
    return found


@pytest.fixture
def logged_in_context(browser: Any, live_server: Any, transactional_db: None, staff_user: Any) -> Iterator[Any]:
    staff_user.is_superuser = True
    staff_user.save()
    build_desk(staff=staff_user)
    client = Client()
    client.force_login(staff_user)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    yield context
    context.close()


@pytest.mark.browser
def test_staff_pages_and_the_demo_run_without_a_single_csp_violation(logged_in_context: Any) -> None:
    page = logged_in_context.new_page()
    found = violations(page)
    ticket = Conversation.objects.order_by("pk").first()
    pages = [
        *STAFF_PAGES,
        f"/dashboard/conversations/{ticket.pk}/",
        "/admin/support/conversation/",
        f"/admin/support/conversation/{ticket.pk}/change/",
        "/admin/support/modelprice/add/",
        "/widget/demo/",
    ]
    for url in pages:
        page.goto(url, wait_until="networkidle")
    page.get_by_role("button", name="Open support chat").click()
    page.get_by_role("dialog").wait_for()
    assert found == []


@pytest.fixture
def strict_site() -> Iterator[Any]:
    """Another origin whose page sends a strict CSP that trusts only our server for scripts and styles."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = server.page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", server.policy)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.page = server.policy = ""
    server.origin = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_the_widget_opens_and_chats_on_a_host_page_with_a_strict_csp(
    live_server: Any, page: Any, claude: FakeClaude, settings: Any, strict_site: Any, transactional_db: None
) -> None:
    ours = live_server.url
    strict_site.policy = (
        f"default-src 'none'; script-src {ours}; style-src {ours}; connect-src {ours}; img-src {ours}; font-src {ours}"
    )
    strict_site.page = (
        "<!doctype html><title>Strict shop</title><h1>Strict shop</h1>"
        f'<script src="{ours}/static/support/widget.js" data-api="{ours}" data-source="web" async></script>'
    )
    settings.CORS_ALLOWED_ORIGINS = [strict_site.origin]
    claude.enqueue(Reply(chunks=["Open ", "every ", "day."], chunk_delay=0.02))
    found = violations(page)

    page.goto(f"{strict_site.origin}/")
    page.get_by_role("button", name="Open support chat").click()
    page.get_by_role("dialog", name="Rezvo Support").wait_for()
    ask(page, "When are you open?")
    assert wait_for_reply(page, 1).inner_text().endswith("Open every day.")
    # Styled by widget.css (the launcher is a round, coloured button), not left unstyled by the policy.
    launcher = page.locator(".rz-launcher")
    assert launcher.evaluate("el => getComputedStyle(el).borderRadius") != "0px"
    assert found == []
    assert Conversation.objects.count() == 1
