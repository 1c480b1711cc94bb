"""The ticket page's handoff UI with the test client: composer, canned replies, take over / hand back,
the live thread fragment and the self-refreshing queue.

Tests marked `needs_core` exercise helper CORE's services (services.conversation_reply,
services.conversation_handoff, Message.author, Role.AGENT, Conversation.handled_by). They skip on the UI
branch alone and run once CORE's branch is merged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from support import services
from support.models import CannedReply, Conversation, EscalationReason, Message, Role

pytestmark = pytest.mark.django_db

XSS = '<img src=x onerror="window.__xss=1"> [prize](javascript:alert(1))'
HAS_CORE = hasattr(services, "conversation_reply") and hasattr(Role, "AGENT")
needs_core = pytest.mark.skipif(not HAS_CORE, reason="needs CORE's services and models (issue 12): run after merge")


@pytest.fixture
def browser(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def thread(make_conversation: Any) -> tuple[Conversation, list[Message]]:
    conversation, _ = make_conversation()
    turns = services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content="Can I speak to someone?"),
            services.Turn(role=Role.ASSISTANT, content="Of course, **a person** will reply."),
            services.Turn(role=Role.USER, content=f"Thanks {XSS}"),
        ],
    )
    services.conversation_escalate(conversation=conversation, reason=EscalationReason.NO_ANSWER)
    conversation.refresh_from_db()
    return conversation, turns


def ticket_url(conversation: Conversation, tail: str = "") -> str:
    return f"/dashboard/conversations/{conversation.pk}/{tail}"


# --- The ticket page -------------------------------------------------------------------------
def test_the_ticket_page_has_a_composer_with_both_send_buttons_and_its_script(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, turns = thread
    response = browser.get(ticket_url(conversation))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'action="{ticket_url(conversation, "reply")}"' in html
    assert '<textarea name="content"' in html
    assert ">Send</button>" in html and ">Send and hand back</button>" in html
    assert 'name="hand_back" value="true"' in html
    assert "/static/dashboard/ticket.js" in html
    assert f'data-messages-url="/api/support/conversations/{conversation.pk}/messages"' in html
    assert f'data-turns-url="{ticket_url(conversation, "turns")}"' in html
    assert f'data-last-id="{turns[-1].pk}"' in html
    assert "<script>" not in html  # the Content-Security-Policy allows no inline script


def test_the_canned_reply_picker_offers_active_replies_with_their_markdown_escaped(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, _ = thread
    CannedReply.objects.create(title="Refunds", content='Refunds take **5 days**. <b>"quoted"</b>')
    CannedReply.objects.create(title="Retired", content="Old text", is_active=False)
    html = browser.get(ticket_url(conversation)).content.decode()
    assert 'id="canned-picker"' in html
    assert 'data-content="Refunds take **5 days**. &lt;b&gt;&quot;quoted&quot;&lt;/b&gt;">Refunds</option>' in html
    assert "Retired" not in html


def test_without_canned_replies_there_is_no_picker(browser: Client, thread: tuple[Conversation, list[Message]]) -> None:
    conversation, _ = thread
    assert 'id="canned-picker"' not in browser.get(ticket_url(conversation)).content.decode()


def test_a_ticket_the_bot_handles_offers_take_over_and_hides_hand_back(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, _ = thread
    html = browser.get(ticket_url(conversation)).content.decode()
    assert f'action="{ticket_url(conversation, "handoff")}"' in html
    assert 'value="human" class="primary" data-when="bot">Take over</button>' in html
    assert 'value="bot" data-when="human" hidden>Hand back to the bot</button>' in html
    assert "Sending takes the conversation over from the bot." in html


# --- Sending a reply -------------------------------------------------------------------------
@pytest.mark.parametrize("content", ["", "   \n  "])
def test_an_empty_reply_is_refused_and_nothing_is_sent(
    browser: Client, thread: tuple[Conversation, list[Message]], content: str
) -> None:
    conversation, _ = thread
    response = browser.post(ticket_url(conversation, "reply"), {"content": content})
    assert response.status_code == 400
    assert "Write a reply first." in response.content.decode()
    assert Message.objects.filter(conversation=conversation).count() == 3


def test_a_reply_over_the_length_limit_is_refused_and_kept_in_the_composer(
    browser: Client, thread: tuple[Conversation, list[Message]], settings: Any
) -> None:
    settings.SUPPORT_MAX_MESSAGE_CHARS = 10
    conversation, _ = thread
    response = browser.post(ticket_url(conversation, "reply"), {"content": "x" * 11})
    assert response.status_code == 400
    html = response.content.decode()
    assert "at most 10 characters (this one has 11)" in html
    assert ">\nxxxxxxxxxxx</textarea>" in html
    assert Message.objects.filter(conversation=conversation).count() == 3


def test_the_composer_calls_the_reply_service_with_the_author_and_hand_back(
    browser: Client, thread: tuple[Conversation, list[Message]], staff_user: Any, monkeypatch: Any
) -> None:
    conversation, _ = thread
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(services, "conversation_reply", lambda **kw: calls.append(kw), raising=False)
    response = browser.post(ticket_url(conversation, "reply"), {"content": "Hello **there**", "hand_back": ""})
    assert response.status_code == 302 and response["Location"] == ticket_url(conversation)
    response = browser.post(ticket_url(conversation, "reply"), {"content": "Back to the bot", "hand_back": "true"})
    assert response.status_code == 302
    assert [(c["conversation"].pk, c["author"], c["content"], c["hand_back"]) for c in calls] == [
        (conversation.pk, staff_user, "Hello **there**", False),
        (conversation.pk, staff_user, "Back to the bot", True),
    ]


def test_take_over_and_hand_back_call_the_handoff_service(
    browser: Client, thread: tuple[Conversation, list[Message]], staff_user: Any, monkeypatch: Any
) -> None:
    conversation, _ = thread
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(services, "conversation_handoff", lambda **kw: calls.append(kw), raising=False)
    for value in ("human", "bot"):
        response = browser.post(ticket_url(conversation, "handoff"), {"handled_by": value})
        assert response.status_code == 302 and response["Location"] == ticket_url(conversation)
    assert [(c["conversation"].pk, c["handled_by"], c["actor"]) for c in calls] == [
        (conversation.pk, "human", staff_user),
        (conversation.pk, "bot", staff_user),
    ]
    assert browser.post(ticket_url(conversation, "handoff"), {"handled_by": "robot"}).status_code == 400


def test_only_staff_can_reply_or_hand_off_and_csrf_is_enforced(
    customer_user: Any, staff_user: Any, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, _ = thread
    customer = Client()
    customer.force_login(customer_user)
    anonymous = Client()
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(staff_user)
    for tail, data in (("reply", {"content": "hi"}), ("handoff", {"handled_by": "human"})):
        assert customer.post(ticket_url(conversation, tail), data).status_code == 403
        assert anonymous.post(ticket_url(conversation, tail), data).status_code == 302
        assert forged.post(ticket_url(conversation, tail), data).status_code == 403
    assert Message.objects.filter(conversation=conversation).count() == 3


def test_reply_and_handoff_answer_404_for_a_missing_ticket_and_405_for_get(browser: Client) -> None:
    for tail in ("reply", "handoff"):
        assert browser.post(f"/dashboard/conversations/nope/{tail}", {"content": "x"}).status_code == 404
        assert browser.get(f"/dashboard/conversations/nope/{tail}").status_code == 405


# --- The live thread fragment ----------------------------------------------------------------
def test_the_turns_fragment_answers_only_turns_after_the_given_one(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, turns = thread
    response = browser.get(ticket_url(conversation, "turns"), {"after": turns[0].pk})
    assert response.status_code == 200 and response["X-Turns-Replace"] == "false"
    html = response.content.decode()
    assert html.count('<article class="turn') == 2
    assert f'data-id="{turns[1].pk}"' in html and f'data-id="{turns[2].pk}"' in html
    assert "<strong>a person</strong>" in html  # the page's Markdown rules
    assert "<img" not in html and 'href="javascript' not in html
    assert "&lt;img src=x" in html

    response = browser.get(ticket_url(conversation, "turns"), {"after": turns[-1].pk})
    assert "<article" not in response.content.decode()


def test_an_unknown_after_answers_the_whole_thread_to_rebuild(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, _ = thread
    for params in ({"after": "not-a-turn"}, {}):
        response = browser.get(ticket_url(conversation, "turns"), params)
        assert response["X-Turns-Replace"] == "true"
        assert response.content.decode().count('<article class="turn') == 3


def test_the_turns_fragment_is_for_staff_only(customer_user: Any, thread: tuple[Conversation, list[Message]]) -> None:
    conversation, _ = thread
    customer = Client()
    customer.force_login(customer_user)
    assert customer.get(ticket_url(conversation, "turns")).status_code == 403
    assert Client().get(ticket_url(conversation, "turns")).status_code == 302


# --- The self-refreshing queue ---------------------------------------------------------------
def test_the_queue_page_loads_its_script_and_names_its_live_fragment(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    html = browser.get("/dashboard/?source=web").content.decode()
    assert "/static/dashboard/queue.js" in html
    assert 'id="queue-live" data-live-url="/dashboard/queue/live?source=web" data-now="' in html


def test_the_queue_fragment_counts_escalations_since_the_page_was_seen(
    browser: Client, thread: tuple[Conversation, list[Message]], make_conversation: Any
) -> None:
    conversation, _ = thread
    before = (timezone.now() - timedelta(minutes=5)).isoformat()
    response = browser.get("/dashboard/queue/live", {"since": before})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-new-escalations="1"' in html
    assert f'href="/dashboard/conversations/{conversation.pk}/"' in html

    seen = timezone.now().isoformat()
    assert 'data-new-escalations="0"' in browser.get("/dashboard/queue/live", {"since": seen}).content.decode()
    later, _ = make_conversation()
    services.conversation_escalate(conversation=later, reason=EscalationReason.HUMAN_REQUESTED)
    assert 'data-new-escalations="1"' in browser.get("/dashboard/queue/live", {"since": seen}).content.decode()


def test_the_queue_fragment_keeps_the_filters_and_refuses_a_bad_since(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, _ = thread
    html = browser.get("/dashboard/queue/live", {"source": "app_diner"}).content.decode()
    assert f"/dashboard/conversations/{conversation.pk}/" not in html  # it is a web conversation
    assert "No tickets match." in html
    assert browser.get("/dashboard/queue/live", {"since": "yesterday-ish"}).status_code == 400


def test_the_queue_fragment_is_for_staff_only(customer_user: Any) -> None:
    customer = Client()
    customer.force_login(customer_user)
    assert customer.get("/dashboard/queue/live").status_code == 403
    assert Client().get("/dashboard/queue/live").status_code == 302


# --- With CORE's services (after the merge) --------------------------------------------------
@needs_core
def test_a_reply_from_the_composer_shows_in_the_thread_under_the_author(
    browser: Client, thread: tuple[Conversation, list[Message]], staff_user: Any
) -> None:
    staff_user.first_name, staff_user.last_name = "Sam", "Rivers"
    staff_user.save()
    conversation, _ = thread
    response = browser.post(ticket_url(conversation, "reply"), {"content": "Hi, I'm **Sam**."}, follow=True)
    assert response.status_code == 200
    reply = Message.objects.get(conversation=conversation, role=Role.AGENT)
    assert reply.content == "Hi, I'm **Sam**." and reply.author == staff_user
    html = response.content.decode()
    assert '<strong>Sam Rivers</strong> <span class="badge agent-badge">staff reply</span>' in html
    assert "Hi, I&#x27;m <strong>Sam</strong>." in html or "Hi, I'm <strong>Sam</strong>." in html
    conversation.refresh_from_db()
    assert conversation.handled_by == "human"
    assert 'value="bot" data-when="human">Hand back to the bot</button>' in html


@needs_core
def test_send_and_hand_back_leaves_the_bot_answering(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, _ = thread
    browser.post(ticket_url(conversation, "reply"), {"content": "Over to the bot.", "hand_back": "true"})
    conversation.refresh_from_db()
    assert conversation.handled_by == "bot"
    assert Message.objects.filter(conversation=conversation, role=Role.AGENT).count() == 1


@needs_core
def test_take_over_then_hand_back_from_the_ticket_page(
    browser: Client, thread: tuple[Conversation, list[Message]]
) -> None:
    conversation, _ = thread
    browser.post(ticket_url(conversation, "handoff"), {"handled_by": "human"})
    conversation.refresh_from_db()
    assert conversation.handled_by == "human"
    browser.post(ticket_url(conversation, "handoff"), {"handled_by": "bot"})
    conversation.refresh_from_db()
    assert conversation.handled_by == "bot"
