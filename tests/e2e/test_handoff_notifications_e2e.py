"""Issue 12's acceptance, the telling-people half: the handoff flow against the running app, with the real
task queue (a `manage.py run_huey` consumer), a local SMTP server (aiosmtpd) and two webhook receivers.

The widget and the staff member speak HTTP to the live server (the browser half is test_handoff_acceptance.py);
the server only queues notifications (a SQLite queue file), which the consumer works off. One receiver
verifies each request's Standard Webhooks signature (the `standardwebhooks` package) against its
endpoint's secret and answers 500 three times per event before a 200; its retries after the consumer's
first attempts are driven through the task functions on a controllable clock (the backoff is minutes). The
other receiver hangs: no request of the flow may wait for it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from django.utils import timezone
from huey.contrib.djhuey import HUEY
from huey.storage import SqliteStorage
from rest_framework.authtoken.models import Token

from support.models import (
    WEBHOOK_EVENTS,
    Conversation,
    DeliveryStatus,
    EventField,
    HandledBy,
    Message,
    Role,
    TicketEvent,
    WebhookAttempt,
    WebhookDelivery,
)
from support.services import webhook_endpoint_create, webhooks
from tests.fakes.fake_claude import FakeClaude, Reply
from tests.fakes.smtp import smtp_server
from tests.fakes.task_queue import consumer_env, wait_for
from tests.fakes.webhook_receiver import WebhookReceiver, webhook_receiver

ROOT = Path(__file__).resolve().parents[2]
SMTP_PORT, HOOK_PORT, HANGING_PORT = 8250, 8251, 8252
#: A webhook attempt gives up after this long (consumer and test process alike).
WEBHOOK_TIMEOUT_S = 8.0
#: The hanging receiver answers after this long: far past the timeout, so every attempt on it times out.
HANG_S = 30.0
#: A request of the flow that waited for the hanging receiver would take at least WEBHOOK_TIMEOUT_S.
REQUEST_BOUND_S = 4.0
DESK = "desk@example.com"
DINER = "diner@example.com"
AGENT_TEXT = "Hi, I'm Sam. I've moved your table to **8 pm**."
LATER_TEXT = "All done: see you at 8 pm. Our assistant can help with anything else."
FLOW_EVENTS = [
    "conversation.escalated",
    "conversation.assigned",
    "conversation.replied",
    "conversation.customer_replied",
    "conversation.replied",
    "conversation.closed",
]


@pytest.fixture
def sqlite_queue(tmp_path: Path) -> Iterator[Path]:
    """The live server (a thread of this process) queues into a SQLite file, as in production."""
    path = tmp_path / "huey.sqlite3"
    storage = HUEY.storage
    HUEY.immediate = False
    HUEY.storage = SqliteStorage(HUEY.name, filename=str(path))
    try:
        yield path
    finally:
        HUEY.immediate = True
        HUEY.storage = storage


@pytest.fixture
def claude(settings: Any) -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        settings.ANTHROPIC_API_KEY = "sk-ant-notifications-key"
        settings.ANTHROPIC_BASE_URL = fake.base_url
        settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
        yield fake


@pytest.fixture
def app_settings(settings: Any) -> Any:
    settings.SUPPORT_WEBHOOKS_ALLOW_HTTP = True
    settings.SUPPORT_WEBHOOKS_TIMEOUT_S = WEBHOOK_TIMEOUT_S
    settings.SUPPORT_NOTIFY_EMAILS = [DESK]
    return settings


class Flow:
    """The visitor's widget and Sam's API client, each request timed."""

    def __init__(self, base_url: str, staff_token: str) -> None:
        self.api = f"{base_url}/api/support"
        self.staff = {"Authorization": f"Token {staff_token}"}
        self.widget: dict[str, str] = {}
        self.conversation_id = ""
        #: The requests that publish an event, and how long each took.
        self.timings: list[tuple[str, float]] = []

    def call(
        self, what: str, method: str, path: str, *, json_body: Any, staff: bool = False, publishes: bool = True
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", **(self.staff if staff else self.widget)}
        request = Request(self.api + path, data=json.dumps(json_body).encode(), method=method, headers=headers)
        started = time.monotonic()
        try:
            with urlopen(request, timeout=30) as response:
                body = response.read()
        except HTTPError as error:
            raise AssertionError(f"{what}: {error.code} {error.read()[:500]!r}") from error
        if publishes:
            self.timings.append((what, time.monotonic() - started))
        return dict(json.loads(body))

    def start(self) -> None:
        created = self.call(
            "open the widget", "POST", "/conversations", json_body={"page_url": "https://example.com/"}, publishes=False
        )
        self.conversation_id = created["id"]
        self.widget = {"X-Conversation-Token": created["token"]}

    def say(self, text: str) -> dict[str, Any]:
        return self.call(f"customer: {text}", "POST", self._path("/chat"), json_body={"message": text, "stream": False})

    def reply(self, text: str, *, hand_back: bool = False) -> dict[str, Any]:
        body = {"content": text, "hand_back": hand_back}
        return self.call("staff reply", "POST", self._path("/replies"), staff=True, json_body=body)

    def _path(self, tail: str = "") -> str:
        return f"/conversations/{self.conversation_id}{tail}"


def _run_consumer(queue: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_huey", "--workers", "4", "--delay", "0.1", "--max-delay", "0.5"],
        cwd=ROOT,
        env=consumer_env(
            queue,
            smtp_port=SMTP_PORT,
            SUPPORT_NOTIFY_EMAILS=DESK,
            SUPPORT_WEBHOOKS_ALLOW_HTTP="true",
            SUPPORT_WEBHOOKS_TIMEOUT_S=str(WEBHOOK_TIMEOUT_S),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(consumer: subprocess.Popen[str]) -> str:
    consumer.send_signal(signal.SIGINT)  # graceful: attempts under way finish first
    try:
        output, _ = consumer.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        consumer.kill()
        output, _ = consumer.communicate()
    return output


def _retry_until_delivered(endpoint_id: Any) -> int:
    """The periodic retry job, on a clock moved on by each backoff, for one endpoint's deliveries."""
    now, rounds = timezone.now(), 0
    pending = WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING)
    while pending.exists():
        rounds += 1
        assert rounds <= 8, "never delivered"
        now += webhooks.backoff_after(rounds)
        for delivery_id in webhooks.webhook_deliveries_due(now=now):
            if pending.filter(pk=delivery_id).exists():
                webhooks.webhook_delivery_attempt(delivery_id=delivery_id, now=now)
    return rounds


def _play(flow: Flow, *, escalation_mailed: Callable[[], bool]) -> Conversation:
    """The handoff: ask for a person (the desk is mailed), Sam answers, the customer answers, leaves, Sam
    answers again and hands back, Sam closes the ticket."""
    flow.start()
    assert "passed" in flow.say("Can I speak to a person please?")["text"]
    # Sam picks the ticket up once the desk was told (the mail goes to whoever has the ticket when it is sent).
    assert wait_for(escalation_mailed, 60), "no escalation mail"
    flow.call("customer gives an email", "POST", flow._path("/contact"), json_body={"email": DINER}, publishes=False)
    flow.reply(AGENT_TEXT)  # the customer is on the widget: no mail for them
    assert flow.say("Thanks Sam, 8 pm works.")["handled_by"] == HandledBy.HUMAN
    # The customer leaves: their widget last polled three minutes ago.
    conversation = Conversation.objects.get(pk=flow.conversation_id)
    Conversation.objects.filter(pk=conversation.pk).update(customer_last_seen_at=timezone.now() - timedelta(minutes=3))
    flow.reply(LATER_TEXT, hand_back=True)
    flow.call("staff close", "PATCH", flow._path(), staff=True, json_body={"status": "closed"})
    conversation.refresh_from_db()
    return conversation


def test_the_handoff_tells_people_by_webhook_and_mail_without_slowing_any_request(
    transactional_db: None,
    live_server: Any,
    sqlite_queue: Path,
    app_settings: Any,
    claude: FakeClaude,
    staff_user: Any,
) -> None:
    staff_user.first_name = "Sam"
    staff_user.save()
    claude.enqueue(Reply(text="I've passed you to our support team."))
    flow = Flow(live_server.url, Token.objects.create(user=staff_user).key)
    with (
        smtp_server(SMTP_PORT) as (_controller, mails),
        webhook_receiver(port=HOOK_PORT, fail_first=3) as receiver,
        webhook_receiver(port=HANGING_PORT, delay=HANG_S) as hanging,
    ):
        endpoint = webhook_endpoint_create(url=receiver.url, events=list(WEBHOOK_EVENTS))
        receiver.secret = endpoint.secret
        webhook_endpoint_create(url=hanging.url, events=list(WEBHOOK_EVENTS))

        consumer = _run_consumer(sqlite_queue)
        try:
            conversation = _play(flow, escalation_mailed=lambda: len(mails) == 1)
            # The consumer makes each first attempt (the receiver answers 500) and sends the two mails.
            done = wait_for(
                lambda: len(receiver.received) >= len(FLOW_EVENTS) and len(mails) >= 2 and hanging.arrived >= 1, 90
            )
        finally:
            output = _stop(consumer)
        assert done, f"the consumer did not deliver; its output:\n{output}"
        assert len(claude.requests) == 1, "the bot answered only the request for a person"

        # The hanging receiver held the consumer's workers, each attempt until it timed out, and is logged so.
        held = WebhookDelivery.objects.filter(endpoint__url=hanging.url, status=DeliveryStatus.PENDING)
        assert hanging.arrived >= 1 and any("timed out" in d.error for d in held), [d.error for d in held]
        rounds = _retry_until_delivered(endpoint.pk)
        _assert_each_event_once(receiver, conversation, rounds)
        _assert_the_mails(mails, conversation)

    slow = [(what, round(seconds, 2)) for what, seconds in flow.timings if seconds >= REQUEST_BOUND_S]
    assert not slow, f"requests waited (the hanging receiver holds {HANG_S:.0f}s): {slow}"
    print("request timings (s):", [(what, round(seconds, 3)) for what, seconds in flow.timings])


def _assert_each_event_once(receiver: WebhookReceiver, conversation: Conversation, rounds: int) -> None:
    assert all(item.verified for item in receiver.received), "every request carries a valid signature"
    ok = receiver.answered_ok()
    assert sorted(item.event for item in ok) == sorted(FLOW_EVENTS), "each event of the flow delivered once"
    assert len({item.webhook_id for item in ok}) == len(FLOW_EVENTS)
    assert all(item.body["data"]["conversation"]["id"] == str(conversation.pk) for item in ok)
    for webhook_id in {item.webhook_id for item in receiver.received}:
        statuses = [item.status for item in receiver.received if item.webhook_id == webhook_id]
        assert statuses == [500, 500, 500, 200], (webhook_id, statuses)
    deliveries = WebhookDelivery.objects.filter(endpoint__url=receiver.url)
    assert deliveries.count() == len(FLOW_EVENTS)
    for delivery in deliveries:
        assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempt_count == 4
        codes = (
            WebhookAttempt.objects.filter(delivery=delivery).order_by("number").values_list("status_code", flat=True)
        )
        assert list(codes) == [500, 500, 500, 200]
    assert rounds >= 3


def _assert_the_mails(mails: list[Any], conversation: Conversation) -> None:
    assert len(mails) == 2, [(m["To"], m["Subject"]) for m in mails]
    escalation, away = mails
    assert escalation["To"] == DESK and "Needs a person" in escalation["Subject"]
    assert away["To"] == DINER and away["Subject"].startswith("Sam replied")
    text = away.get_body(preferencelist=("plain",)).get_content()
    assert "All done: see you at 8 pm." in text and "Thanks Sam, 8 pm works." in text
    assert away.get_body(preferencelist=("html",)) is not None, "plain text and HTML"
    assert TicketEvent.objects.filter(conversation=conversation, field=EventField.EMAIL_SENT).count() == 2
    assert Message.objects.filter(conversation=conversation, role=Role.AGENT).count() == 2
