"""manage.py purge, erase, export_conversations, and rebuild_rollups after a deletion."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from support import rollups, services
from support.models import Conversation, DailyConversationRollup, DailyUsageRollup, ErasureKind, ErasureRecord, Message
from tests.fakes.desk import build_desk
from tests.services.test_retention import full_conversation
from tests.services.test_rollups import snapshot

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- purge -----------------------------------------------------------------------------------
def test_purge_dry_run_says_what_it_would_delete_and_deletes_nothing(staff_user: Any) -> None:
    full_conversation(staff_user, age_days=400)

    out, _ = run("purge", "--older-than", "365d", "--dry-run")

    assert "Would delete 1 conversations (1 idempotency_records, 2 messages, 3 ticket_events, 1 ticket_notes)." in out
    assert Conversation.objects.count() == 1
    assert not ErasureRecord.objects.exists()


def test_purge_deletes_in_batches_shows_progress_and_records_the_operator(staff_user: Any) -> None:
    for age in (400, 401, 402):
        full_conversation(staff_user, age_days=age)
    kept = full_conversation(staff_user, age_days=3)

    out, err = run("purge", "--older-than", "365", "--batch-size", "2", "--operator", "alice")

    assert "Deleted 3 conversations" in out
    assert "conversations: 2/3 (67%)" in err and "conversations: 3/3 (100%)" in err
    assert list(Conversation.objects.values_list("pk", flat=True)) == [kept.pk]
    record = ErasureRecord.objects.get()
    assert (record.kind, record.operator, record.matched["older_than_days"]) == (ErasureKind.PURGE, "alice", 365)


def test_purge_runs_as_the_os_user_when_no_operator_is_given(staff_user: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("LOGNAME", "carol")
    monkeypatch.setenv("USER", "carol")
    full_conversation(staff_user, age_days=400)
    run("purge", "--older-than", "365d", "--no-progress")
    assert ErasureRecord.objects.get().operator == "carol"


@pytest.mark.parametrize("age", ["0d", "-3d", "a year", "365h"])
def test_purge_refuses_an_age_that_is_not_a_number_of_days(age: str) -> None:
    with pytest.raises(CommandError, match="--older-than"):
        run("purge", "--older-than", age)


def test_purge_without_an_age_uses_the_retention_setting_or_asks_for_one(staff_user: Any, settings: Any) -> None:
    settings.SUPPORT_RETENTION_DAYS = None
    with pytest.raises(CommandError, match="SUPPORT_RETENTION_DAYS is not set"):
        run("purge")
    full_conversation(staff_user, age_days=40)
    settings.SUPPORT_RETENTION_DAYS = 30
    out, _ = run("purge")
    assert "Deleted 1 conversations" in out


# --- erase -----------------------------------------------------------------------------------
def test_erase_by_user_id_deletes_only_their_conversations_and_writes_a_record(staff_user: Any) -> None:
    theirs = [full_conversation(staff_user, user_id="u-7", age_days=age) for age in (0, 90)]
    other = full_conversation(staff_user, user_id="u-8")

    out, _ = run("erase", "--user-id", "u-7", "--operator", "dpo@rezvo")

    assert "Deleted 2 conversations" in out
    assert list(Conversation.objects.values_list("pk", flat=True)) == [other.pk]
    record = ErasureRecord.objects.get()
    assert record.matched == {"user_id": "u-7"}
    assert record.operator == "dpo@rezvo"
    assert sorted(record.days) == sorted({rollups.utc_day(c.created_at).isoformat() for c in theirs})


def test_erase_by_conversation_id(staff_user: Any) -> None:
    one, two = full_conversation(staff_user), full_conversation(staff_user)
    run("erase", "--conversation", str(one.pk))
    assert list(Conversation.objects.values_list("pk", flat=True)) == [two.pk]


def test_erase_dry_run_deletes_nothing(staff_user: Any) -> None:
    full_conversation(staff_user, email="ana@example.com")
    out, _ = run("erase", "--email", "ANA@example.com", "--dry-run")
    assert "Would delete 1 conversations" in out
    assert Conversation.objects.count() == 1 and not ErasureRecord.objects.exists()


@pytest.mark.parametrize(
    "args", [(), ("--user-id", "u", "--email", "a@b.c"), ("--user-id", " ")], ids=["none", "two", "blank"]
)
def test_erase_needs_exactly_one_identifier(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        run("erase", *args)
    assert not ErasureRecord.objects.exists()


# --- export_conversations --------------------------------------------------------------------
def test_export_writes_the_persons_conversations_as_json(staff_user: Any) -> None:
    full_conversation(staff_user, user_id="u-7", question="Is the terrace open?")
    full_conversation(staff_user, user_id="u-8", question="Someone else's question")

    out, _ = run("export_conversations", "--user-id", "u-7")

    document = json.loads(out)
    assert document["subject"] == {"user_id": "u-7"}
    [conversation] = document["conversations"]
    assert [m["content"] for m in conversation["messages"]] == ["Is the terrace open?", "Here it is."]
    assert conversation["rating"]["value"] == "up"
    assert {"status", "rating"} <= {e["field"] for e in conversation["events"]}
    assert "Someone else" not in out
    assert "Called them back" not in out  # staff notes are not exported


def test_export_by_email_to_a_file(staff_user: Any, tmp_path: Path) -> None:
    full_conversation(staff_user, email="Ana@Example.com")
    target = tmp_path / "ana.json"

    out, _ = run("export_conversations", "--email", "ana@example.com", "--output", str(target))

    assert f"Wrote 1 conversations to {target}." in out
    assert json.loads(target.read_text())["conversations"][0]["contact_email"] == "Ana@Example.com"


def test_export_needs_a_user_id_or_an_email() -> None:
    with pytest.raises(CommandError):
        run("export_conversations")


# --- rebuild_rollups after a purge -----------------------------------------------------------
def test_rebuild_keeps_the_rollups_of_days_with_deleted_conversations_and_force_recomputes_them(
    staff_user: Any,
) -> None:
    build_desk(staff=staff_user)  # its oldest conversation is 43 days old
    figures = snapshot()
    purged_day = rollups.utc_day(timezone.now() - timedelta(days=43))
    run("purge", "--older-than", "30d")
    assert snapshot() == figures
    # A day without deletions that needs recomputing: its rows were lost.
    today = rollups.utc_day(timezone.now())
    DailyConversationRollup.objects.filter(day=today).delete()

    out, _ = run("rebuild_rollups", "--no-progress")

    assert "Kept the rollups of 1 days as they were" in out
    assert snapshot() == figures
    assert DailyUsageRollup.objects.filter(day=purged_day).exists()

    out, _ = run("rebuild_rollups", "--no-progress", "--force")

    assert "Kept the rollups" not in out
    assert not DailyUsageRollup.objects.filter(day=purged_day).exists()
    assert not DailyConversationRollup.objects.filter(day=purged_day, conversations__gt=0).exists()
    assert Message.objects.exists() and DailyConversationRollup.objects.filter(day=today).exists()


def test_rebuild_without_deletions_recomputes_every_day(staff_user: Any) -> None:
    build_desk(staff=staff_user)
    figures = snapshot()
    DailyUsageRollup.objects.all().delete()
    out, _ = run("rebuild_rollups", "--no-progress")
    assert "Kept the rollups" not in out
    assert snapshot() == figures
    assert services.rollups_rebuild().kept_days == 0
