"""Issue 15 in the browser: a verified diner at venue b7, on the venue's own site, sees b7's widget and
only b7's answers; a page that merely names b7 without the server's signature sees neither."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from support import services
from support.identity import Identity
from support.models import BusinessProfile, Conversation, KnowledgeArticle
from tests.e2e.test_widget_e2e import ask, wait_for_reply
from tests.fakes.desk import turn_pair
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = [pytest.mark.browser]

SECRET = "venue-site-shared-secret"
B7_ANSWER = "Park behind Trattoria Sette's kitchen, free after 6pm."
B8_ANSWER = "Osteria Otto has street parking only."


class VenueSite(ThreadingHTTPServer):
    """The embedding site: its server signs the signed-in diner's id and renders the widget's tag."""

    tag = ""
    origin = ""


@pytest.fixture
def venue_site() -> Iterator[VenueSite]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"<!doctype html><title>Trattoria Sette</title><h1>Book a table</h1>{server.tag}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = VenueSite(("127.0.0.1", 0), Handler)
    server.origin = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def widget_tag(api: str, *, user_id: str, business_id: str, signed: bool = True) -> str:
    # What the venue's server renders: the hash is computed there, with the secret the browser never sees.
    user_hash = hmac.new(SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest() if signed else ""
    return (
        f'<script src="{api}/static/support/widget.js" data-api="{api}" data-source="app_diner" '
        f'data-user-id="{user_id}" data-business-id="{business_id}" data-audience="diner" '
        f'data-name="Ann" data-email="ann@example.com" data-user-hash="{user_hash}" async></script>'
    )


@pytest.fixture
def venues(settings: Any, venue_site: VenueSite) -> None:
    settings.SUPPORT_IDENTITY_SECRET = SECRET
    settings.CORS_ALLOWED_ORIGINS = [venue_site.origin]
    KnowledgeArticle.objects.create(
        title="Sette parking", keywords="parking, park", answer=B7_ANSWER, business_ids="b7"
    )
    KnowledgeArticle.objects.create(title="Otto parking", keywords="parking, park", answer=B8_ANSWER, business_ids="b8")
    BusinessProfile.objects.create(
        business_id="b7", display_name="Trattoria Sette", greeting="Benvenuti! Ask us anything."
    )
    earlier, _ = services.conversation_create(identity=Identity(user_id="ann", business_id="b7", verified=True))
    services.message_log(conversation=earlier, turns=turn_pair("Table for two on Friday?", "Booked."))


def test_a_verified_diner_at_b7_sees_only_b7s_answers(
    live_server: Any, page: Any, venue_site: VenueSite, venues: None, settings: Any
) -> None:
    settings.ANTHROPIC_API_KEY = ""  # the offline responder answers from the articles themselves
    venue_site.tag = widget_tag(live_server.url, user_id="ann", business_id="b7")
    page.goto(f"{venue_site.origin}/")
    assert SECRET not in page.content()
    page.get_by_role("button", name="Open support chat").click()
    page.get_by_role("dialog", name="Trattoria Sette").wait_for()  # the venue's profile, not the site-wide title
    assert "Benvenuti! Ask us anything." in page.get_by_role("log").inner_text()
    past = page.get_by_role("region", name="Your earlier conversations")
    assert "Table for two on Friday?" in past.inner_text()

    ask(page, "Is there parking?")
    reply = wait_for_reply(page, 1).inner_text()
    assert B7_ANSWER in reply
    assert "Otto" not in page.get_by_role("log").inner_text()
    conversation = Conversation.objects.exclude(summary="Table for two on Friday?").get()
    assert (conversation.identity_verified, conversation.business_id, conversation.audience) == (True, "b7", "diner")


def test_the_prompt_for_a_verified_b7_diner_carries_b7s_article_and_never_b8s(
    live_server: Any, page: Any, venue_site: VenueSite, venues: None, settings: Any
) -> None:
    with FakeClaude() as claude:
        settings.ANTHROPIC_API_KEY = "sk-ant-identity-e2e"
        settings.ANTHROPIC_BASE_URL = claude.base_url
        settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
        claude.enqueue(Reply(chunks=["Yes: park behind ", "the kitchen."], chunk_delay=0.02))
        venue_site.tag = widget_tag(live_server.url, user_id="ann", business_id="b7")
        page.goto(f"{venue_site.origin}/")
        page.get_by_role("button", name="Open support chat").click()
        ask(page, "Is there parking?")
        assert wait_for_reply(page, 1).inner_text().endswith("Yes: park behind the kitchen.")
        system = json.dumps(claude.last_request.body)  # instructions and the cited articles
    assert B7_ANSWER in system and B8_ANSWER not in system


def test_a_page_naming_b7_without_the_servers_signature_gets_no_venue_answers(
    live_server: Any, page: Any, venue_site: VenueSite, venues: None, settings: Any
) -> None:
    settings.ANTHROPIC_API_KEY = ""
    venue_site.tag = widget_tag(live_server.url, user_id="ann", business_id="b7", signed=False)
    page.goto(f"{venue_site.origin}/")
    page.get_by_role("button", name="Open support chat").click()
    page.get_by_role("dialog").wait_for()
    assert page.get_by_role("region", name="Your earlier conversations").count() == 0
    ask(page, "Is there parking?")
    reply = wait_for_reply(page, 1).inner_text()
    assert B7_ANSWER not in reply and B8_ANSWER not in reply
    assert Conversation.objects.get(identity_verified=False).business_id == "b7"  # stored, as a claim
