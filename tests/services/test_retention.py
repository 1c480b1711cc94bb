"""Deleting conversations (retention purge, erasure): every row that belongs to them goes, the rollups stay,
an erasure record says who, when, what and how many, and nothing that pointed at them breaks."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from support import rollups, selectors, services, tasks
from support.models import (
    Conversation,
    ErasureKind,
    ErasureRecord,
    IdempotencyRecord,
    Message,
    Status,
    TicketEvent,
    TicketNote,
)
from tests.fakes.desk import turn_pair
from tests.services.test_rollups import snapshot

pytestmark = pytest.mark.django_db


def full_conversation(
    staff_user: Any, *, age_days: int = 0, user_id: str = "", email: str = "", question: str = "Where is my table?"
) -> Conversation:
    """A conversation with turns, a rating, ticket events, a note and an Idempotency-Key, `age_days` old."""
    conversation, _ = services.conversation_create(user_id=user_id)
    messages = services.message_log(conversation=conversation, turns=turn_pair(question, "Here it is."))
    services.conversation_rate(conversation=conversation, rating="up", message=messages[1])
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": Status.OPEN})
    services.ticket_note_add(conversation=conversation, author=staff_user, text="Called them back.")
    if email:
        services.conversation_contact_set(conversation=conversation, email=email)
    IdempotencyRecord.objects.create(
        conversation=conversation, key=f"k-{conversation.pk}", fingerprint="f", user_message=messages[0]
    )
    if age_days:
        created = timezone.now() - timedelta(days=age_days)
        Conversation.objects.filter(pk=conversation.pk).update(created_at=created)
        conversation.created_at = created
    return Conversation.objects.get(pk=conversation.pk)


def rows_of(conversation: Conversation) -> dict[str, int]:
    return {
        "conversations": Conversation.objects.filter(pk=conversation.pk).count(),
        "messages": Message.objects.filter(conversation_id=conversation.pk).count(),
        "ticket_events": TicketEvent.objects.filter(conversation_id=conversation.pk).count(),
        "ticket_notes": TicketNote.objects.filter(conversation_id=conversation.pk).count(),
        "idempotency_records": IdempotencyRecord.objects.filter(conversation_id=conversation.pk).count(),
    }


def test_a_purge_deletes_old_conversations_with_every_row_of_theirs_and_keeps_the_rest(staff_user: Any) -> None:
    old = full_conversation(staff_user, age_days=400)
    new = full_conversation(staff_user, age_days=10)
    before = rows_of(old)
    assert all(before.values())

    result = services.conversations_purge(older_than=timedelta(days=365), operator="ops")

    assert set(rows_of(old).values()) == {0}
    assert all(rows_of(new).values())
    assert dict(result.counts) == before
    assert result.days == {rollups.utc_day(old.created_at)}


def test_deleting_leaves_every_rollup_figure_as_it_was(staff_user: Any) -> None:
    full_conversation(staff_user, user_id="u1")
    full_conversation(staff_user, user_id="u2", question="Can I pay a deposit?")
    services.rollups_rebuild()
    figures = snapshot()
    before = selectors.analytics_summary(days=7)
    assert before["total_conversations"] == 2 and before["total_cost_micros"] > 0

    services.subject_erase(operator="ops", user_id="u1")

    assert Conversation.objects.count() == 1
    assert snapshot() == figures
    after = selectors.analytics_summary(days=7)
    for figure in ("total_conversations", "total_messages", "total_cost_micros"):
        assert after[figure] == before[figure]


def test_a_purge_of_several_batches_deletes_exactly_the_old_conversations(staff_user: Any) -> None:
    old = [full_conversation(staff_user, age_days=40 + n) for n in range(5)]
    kept = [full_conversation(staff_user, age_days=5) for _ in range(2)]
    seen: list[tuple[int, int]] = []

    result = services.conversations_purge(
        older_than=timedelta(days=30),
        operator="ops",
        batch_size=2,
        progress=lambda done, total: seen.append((done, total)),
    )

    assert result.conversations == 5
    assert result.counts["messages"] == 10
    assert result.counts["ticket_notes"] == 5
    assert set(Conversation.objects.values_list("pk", flat=True)) == {c.pk for c in kept}
    assert not Message.objects.filter(conversation_id__in=[c.pk for c in old]).exists()
    assert seen == [(2, 5), (4, 5), (5, 5)]
    record = ErasureRecord.objects.get()
    assert record.counts == dict(result.counts)
    assert record.finished_at is not None
    assert len(record.days) == 5


def test_a_dry_run_counts_the_rows_and_deletes_nothing(staff_user: Any) -> None:
    old = full_conversation(staff_user, age_days=400)
    expected = rows_of(old)

    result = services.conversations_purge(older_than=timedelta(days=365), operator="ops", dry_run=True)

    assert dict(result.counts) == expected
    assert rows_of(old) == expected
    assert not ErasureRecord.objects.exists()


def test_an_erasure_by_email_matches_any_case_and_records_the_request_without_the_content(staff_user: Any) -> None:
    theirs = full_conversation(staff_user, email="Ana@Example.com", question="My secret booking question")
    other = full_conversation(staff_user, email="bo@example.com")

    result = services.subject_erase(operator="dpo", email=" ana@example.COM ")

    assert not Conversation.objects.filter(pk=theirs.pk).exists()
    assert Conversation.objects.filter(pk=other.pk).exists()
    record = ErasureRecord.objects.get()
    assert record == result.record
    assert (record.kind, record.operator, record.matched) == (ErasureKind.ERASURE, "dpo", {"email": "ana@example.COM"})
    assert record.counts["conversations"] == 1 and record.counts["messages"] == 2
    stored = str([record.matched, record.counts, record.days, record.operator])
    assert "secret" not in stored and "Here it is" not in stored and "Called them" not in stored


def test_an_erasure_that_matches_nothing_is_still_recorded_but_an_empty_purge_is_not(staff_user: Any) -> None:
    services.conversations_purge(older_than=timedelta(days=1), operator="ops")
    assert not ErasureRecord.objects.exists()

    result = services.subject_erase(operator="dpo", user_id="nobody")

    assert result.conversations == 0
    assert ErasureRecord.objects.get().matched == {"user_id": "nobody"}


@pytest.mark.parametrize(
    "given",
    [{}, {"user_id": "u", "email": "a@b.c"}, {"user_id": "  "}],
    ids=["none", "two", "blank"],
)
def test_an_erasure_needs_exactly_one_identifier(given: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        services.subject_erase(operator="dpo", **given)
    assert not ErasureRecord.objects.exists()


def test_a_malformed_conversation_id_erases_nothing(staff_user: Any) -> None:
    full_conversation(staff_user)
    result = services.subject_erase(operator="dpo", conversation_id="not-an-id")
    assert result.conversations == 0
    assert Conversation.objects.count() == 1


def test_tasks_queued_for_a_deleted_conversation_do_nothing(staff_user: Any, mailoutbox: Any) -> None:
    conversation = full_conversation(staff_user)
    message_id = str(Message.objects.filter(conversation_id=conversation.pk).first().pk)  # type: ignore[union-attr]
    services.subject_erase(operator="dpo", conversation_id=str(conversation.pk))

    tasks.escalation_mail.call_local(str(conversation.pk))
    tasks.customer_away_reply.call_local(str(conversation.pk), message_id)

    assert mailoutbox == []


def test_the_retention_task_is_off_until_the_setting_is_set(staff_user: Any, settings: Any) -> None:
    old = full_conversation(staff_user, age_days=100)
    settings.SUPPORT_RETENTION_DAYS = None
    assert tasks.conversations_retention_purge.call_local() == 0
    assert Conversation.objects.filter(pk=old.pk).exists()

    settings.SUPPORT_RETENTION_DAYS = 90
    assert tasks.conversations_retention_purge.call_local() == 1

    assert not Conversation.objects.filter(pk=old.pk).exists()
    record = ErasureRecord.objects.get()
    assert (record.kind, record.operator, record.matched["older_than_days"]) == (ErasureKind.PURGE, "retention job", 90)


def test_an_erasure_scrubs_the_summary_from_the_webhook_payloads_about_the_conversation(staff_user: Any) -> None:
    from support.models import WebhookDelivery, WebhookEndpoint
    from support.services.notifications import notification_payload

    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/x", events=["conversation.escalated"])
    theirs = full_conversation(staff_user, user_id="u-7", question="My private question")
    other = full_conversation(staff_user, user_id="u-8", question="Another question")
    for n, conversation in enumerate((theirs, other)):
        payload = notification_payload(event="conversation.escalated", conversation=conversation)
        WebhookDelivery.objects.create(endpoint=endpoint, event="x", payload=payload, webhook_id=f"msg_{n}")

    result = services.subject_erase(operator="dpo", user_id="u-7")

    summaries = {d.webhook_id: d.payload["data"]["conversation"]["summary"] for d in WebhookDelivery.objects.all()}
    assert summaries == {"msg_0": "[erased]", "msg_1": "Another question"}
    assert result.counts["webhook_payloads_scrubbed"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_erasures_of_one_person_delete_and_count_each_row_once(django_user_model: Any) -> None:
    staff_user = django_user_model.objects.create_user(username="agent", is_staff=True)
    made = [full_conversation(staff_user, user_id="u-7") for _ in range(6)]
    messages = Message.objects.filter(conversation_id__in=[c.pk for c in made]).count()
    errors: list[BaseException] = []

    def erase() -> None:
        try:
            services.subject_erase(operator="dpo", user_id="u-7", batch_size=2)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=erase) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert not Conversation.objects.exists() and not Message.objects.exists()
    records = list(ErasureRecord.objects.all())
    assert len(records) == 3
    assert sum(r.counts.get("conversations", 0) for r in records) == 6
    assert sum(r.counts.get("messages", 0) for r in records) == messages


def test_a_purge_costs_the_same_queries_per_batch_however_many_rows_each_conversation_has(staff_user: Any) -> None:
    from django.test.utils import CaptureQueriesContext

    def purge_cost(turn_pairs: int) -> int:
        for _ in range(4):
            conversation = full_conversation(staff_user, age_days=400)
            for n in range(turn_pairs):
                services.message_log(conversation=conversation, turns=turn_pair(f"More {n}?", "Yes."))
        with CaptureQueriesContext(connection) as queries:
            result = services.conversations_purge(older_than=timedelta(days=365), operator="ops", batch_size=2)
        assert result.conversations == 4
        return len(queries)

    few = purge_cost(turn_pairs=0)
    assert few > 0
    assert purge_cost(turn_pairs=5) == few


def test_a_purge_larger_than_the_default_batch_counts_every_row() -> None:
    old = timezone.now() - timedelta(days=400)
    made = Conversation.objects.bulk_create(
        [Conversation(created_at=old, token_hash=f"{n:064d}") for n in range(services.RETENTION_BATCH + 1)]
    )
    Message.objects.bulk_create([Message(conversation=c, role="user", content="hi", created_at=old) for c in made])
    fresh, _ = services.conversation_create()

    result = services.conversations_purge(older_than=timedelta(days=365), operator="ops")

    assert (result.conversations, result.counts["messages"]) == (501, 501)
    assert list(Conversation.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not Message.objects.exists()


def test_a_run_that_dies_part_way_has_recorded_its_days_and_a_rerun_finishes_it(
    staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.services import retention

    old = full_conversation(staff_user, age_days=400)

    def database_gone(ids: list[Any]) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(retention, "_batch_delete", database_gone)
    with pytest.raises(RuntimeError):
        services.conversations_purge(older_than=timedelta(days=365), operator="ops")
    record = ErasureRecord.objects.get()
    assert record.days == [rollups.utc_day(old.created_at).isoformat()]
    assert record.finished_at is None
    assert rollups.utc_day(old.created_at) in selectors.deleted_days()

    monkeypatch.undo()
    assert services.conversations_purge(older_than=timedelta(days=365), operator="ops").conversations == 1
    assert not Conversation.objects.exists()
