"""The task queue (Huey) for real: a `manage.py run_huey` consumer on a temporary SQLite queue sends the
escalation's webhook and mail; the settings choose the queue; the periodic jobs are on Huey's scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from huey.contrib.djhuey import HUEY
from huey.storage import SqliteStorage

from support import services, tasks
from support.models import Conversation, EscalationReason, EventField, IdempotencyRecord, TicketEvent
from support.services import rollup_fold
from tests.fakes.smtp import smtp_server
from tests.fakes.task_queue import real_consumer, wait_for
from tests.fakes.webhook_receiver import webhook_receiver

ROOT = Path(__file__).resolve().parents[2]
SMTP_PORT = 8222


@pytest.fixture
def sqlite_queue(tmp_path: Path) -> Iterator[Path]:
    """This process queues into a temporary SQLite file, as the web server does into var/huey.sqlite3."""
    path = tmp_path / "huey.sqlite3"
    HUEY.immediate = False
    HUEY.storage = SqliteStorage(HUEY.name, filename=str(path))
    try:
        yield path
    finally:
        HUEY.immediate = True


@pytest.mark.django_db(transaction=True)
@override_settings(SUPPORT_WEBHOOKS_ALLOW_HTTP=True)
def test_a_real_consumer_sends_the_escalation_webhook_and_mail(
    sqlite_queue: Path, make_conversation: Callable[..., tuple[Conversation, str]]
) -> None:
    conversation, _ = make_conversation()
    with webhook_receiver() as receiver, smtp_server(SMTP_PORT) as (_controller, messages):
        receiver.secret = services.webhook_endpoint_create(url=receiver.url, events=["conversation.escalated"]).secret
        services.conversation_escalate(conversation=conversation, reason=EscalationReason.HUMAN_REQUESTED)
        assert HUEY.pending_count() == 1, "queued in the SQLite file, not run inline"
        assert receiver.received == [] and messages == []

        with real_consumer(sqlite_queue, smtp_port=SMTP_PORT) as consumer:
            done = wait_for(lambda: bool(receiver.answered_ok()) and bool(messages))
        assert done, f"the consumer did not deliver; its output:\n{consumer.output}"

    [delivered] = receiver.answered_ok()
    assert delivered.verified and delivered.event == "conversation.escalated"
    assert delivered.body["data"]["conversation"]["id"] == str(conversation.pk)
    assert messages[0]["To"] == "desk@example.com"
    assert TicketEvent.objects.filter(conversation=conversation, field=EventField.EMAIL_SENT).count() == 1
    assert HUEY.pending_count() == 0


def _settings_of(env: dict[str, str]) -> str:
    code = (
        "import django; django.setup(); from huey.contrib.djhuey import HUEY; "
        "print(type(HUEY).__name__, HUEY.name, HUEY.immediate, getattr(HUEY.storage, 'filename', ''))"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "HUEY_SQLITE_PATH", "HUEY_IMMEDIATE")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base | {"DJANGO_SETTINGS_MODULE": "rezvo_support.settings", "REZVO_SKIP_DOTENV": "true"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_queue_is_a_sqlite_file_under_var_by_default_and_redis_when_redis_url_is_set() -> None:
    assert _settings_of({}) == f"SqliteHuey rezvo-tasks False {ROOT / 'var' / 'huey.sqlite3'}"
    assert _settings_of({"REDIS_URL": "redis://127.0.0.1:6379/12"}).startswith("RedisHuey rezvo-tasks False")


def test_the_periodic_jobs_are_on_hueys_scheduler() -> None:
    periodic = {task.name for task in HUEY._registry.periodic_tasks}
    assert {"webhook_retry_due", "idempotency_keys_prune", "rollups_fold_periodic"} <= periodic


@pytest.mark.django_db
def test_the_hourly_job_prunes_idempotency_keys_past_the_ttl(
    make_conversation: Callable[..., tuple[Conversation, str]], settings: Any
) -> None:
    conversation, _ = make_conversation()
    for key, age in (("old", timedelta(hours=settings.SUPPORT_IDEMPOTENCY_TTL_HOURS + 1)), ("new", timedelta())):
        record = IdempotencyRecord.objects.create(conversation=conversation, key=key, fingerprint="f")
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)
    assert tasks.idempotency_keys_prune.call_local() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db
def test_health_reports_the_queue_backlog(client: Any, task_queue: Any) -> None:
    assert client.get("/health").json()["queue"] == {"pending": 0}
    tasks.webhook_retry_due()  # queued, not run: no consumer here
    tasks.webhook_retry_due()
    assert client.get("/health").json() == {"status": "ok", "database": "ok", "queue": {"pending": 2}}


@pytest.mark.django_db
def test_health_stays_ok_and_says_so_when_the_queue_cannot_be_read(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> int:
        raise OSError("queue file unreadable")

    monkeypatch.setattr(tasks, "queue_backlog", broken)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["queue"] == {"pending": None, "error": "OSError"}


@pytest.fixture
def redis_queue() -> Iterator[Any]:
    """This process queues into Redis (db 12, flushed), as every host does when REDIS_URL is set."""
    from huey.storage import RedisStorage

    storage = RedisStorage(HUEY.name, url="redis://127.0.0.1:6379/12")
    storage.flush_all()
    HUEY.immediate = False
    HUEY.storage = storage
    try:
        yield storage
    finally:
        storage.flush_all()
        HUEY.immediate = True


@pytest.mark.django_db
def test_on_redis_publishing_queues_one_task_and_health_counts_it(
    redis_queue: Any,
    client: Any,
    make_conversation: Callable[..., tuple[Conversation, str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    conversation, _ = make_conversation()
    with django_capture_on_commit_callbacks(execute=True):
        services.notification_publish(event="conversation.escalated", conversation=conversation)
    assert redis_queue.queue_size() == 1
    assert client.get("/health").json()["queue"] == {"pending": 1}


@pytest.mark.django_db(transaction=True)
def test_a_real_consumer_folds_a_logged_turn_into_the_rollups_within_five_seconds(sqlite_queue: Path) -> None:
    from support.models import DailyUsageRollup, Message
    from tests.fakes.desk import turn_pair

    conversation, _ = services.conversation_create()

    def usage_messages() -> int:
        return sum(DailyUsageRollup.objects.values_list("messages", flat=True))

    with real_consumer(sqlite_queue, smtp_port=SMTP_PORT) as consumer:
        # The first turn also proves the consumer is up (starting Django takes a while on a busy machine).
        services.message_log(conversation=conversation, turns=turn_pair("Is the consumer up yet?", "It is now."))
        assert Message.objects.filter(rollup_pending=True).count() == 2, "left to the queue, not folded inline"
        started = wait_for(lambda: usage_messages() == 2, timeout=60)
        rollup_fold._soon_next = 0.0  # a new second: this process asks for a fold again at once
        services.message_log(conversation=conversation, turns=turn_pair("And a second question?", "Answered."))
        seen = started and wait_for(lambda: usage_messages() == 4, timeout=5)
    assert started, f"the consumer never folded; its output:\n{consumer.output}"
    assert seen, f"the second turn was not in the rollups within 5 s; the consumer's output:\n{consumer.output}"
    assert not Message.objects.filter(rollup_pending=True).exists()
