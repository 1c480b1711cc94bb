"""A database migrated by the former per-database `support` migration sets upgrades to the single set.

Each step is its own `manage.py` process against a throwaway database (a temporary SQLite file, or a
fresh MongoDB database on the leg's server), as an operator's upgrade would run: migrate and write rows
with the old set, then start on the current code and migrate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent.parent
OLD_SETTINGS = "tests.fixtures.old_migrations.settings"

# The models as the old set left them (its migration state), not today's classes: today's have fields
# (added by newer migrations) that the old tables do not have yet.
WRITE_ROWS = """
from django.db import connection
from django.db.migrations.loader import MigrationLoader
old = MigrationLoader(connection).project_state().apps
User, Conversation, Message, ModelPrice, TicketNote = (
    old.get_model(*name.split("."))
    for name in ("auth.User", "support.Conversation", "support.Message", "support.ModelPrice", "support.TicketNote")
)
staff = User.objects.create(username="upgrade-staff", is_staff=True)
conversation = Conversation.objects.create(summary="before the upgrade", assigned_to=staff, token_hash="h")
message = Message.objects.create(
    conversation=conversation, role="user", content="hello", price=ModelPrice.objects.order_by("pk").first()
)
Conversation.objects.filter(pk=conversation.pk).update(rated_message=message)
TicketNote.objects.create(conversation=conversation, author=staff, author_label="upgrade-staff", text="note")
print(str(conversation.pk))
"""

READ_ROWS = """
import json, os
from support.models import Conversation, Message, ModelPrice, TicketNote
from support.selectors import conversation_pk
conversation = Conversation.objects.get(pk=conversation_pk(os.environ["UPGRADE_CONVERSATION_ID"]))
message = conversation.messages.get()
note = conversation.ticket_notes.get()
print(json.dumps({
    "conversations": Conversation.objects.count(),
    "summary": conversation.summary,
    "pk_type": type(conversation.pk).__name__,
    "assigned_to": conversation.assigned_to.username,
    "rated_message_is_the_message": conversation.rated_message_id == message.pk,
    "message_price_is_seeded": message.price_id is not None and ModelPrice.objects.filter(pk=message.price_id).exists(),
    "note_author": note.author.username,
}))
"""


def _manage(env: dict[str, str], *args: str, settings_module: str = "rezvo_support.settings") -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": settings_module},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def fresh_database_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment for manage.py against an empty database of this leg's kind, dropped afterwards."""
    env = dict(os.environ)
    if not settings.USE_MONGODB:
        yield {**env, "SQLITE_PATH": str(tmp_path / "upgrade.sqlite3")}
        return
    from pymongo import MongoClient

    name = f"rezvo_upgrade_{uuid.uuid4().hex[:12]}"
    yield {**env, "MONGODB_NAME": name}
    with MongoClient(settings.MONGODB_URI, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)


def test_a_database_migrated_by_the_old_per_database_set_applies_only_the_newer_migrations(
    fresh_database_env: dict[str, str],
) -> None:
    _manage(fresh_database_env, "migrate", "--no-input", settings_module=OLD_SETTINGS)
    conversation_id = _manage(
        fresh_database_env, "shell", "--no-imports", "-c", WRITE_ROWS, settings_module=OLD_SETTINGS
    ).splitlines()[-1]

    upgrade = _manage(fresh_database_env, "migrate", "--no-input")
    _manage(fresh_database_env, "migrate", "--check")  # exits 1 when any migration is unapplied
    _manage(fresh_database_env, "makemigrations", "--check", "--dry-run")
    rows_json = _manage(
        {**fresh_database_env, "UPGRADE_CONVERSATION_ID": conversation_id}, "shell", "--no-imports", "-c", READ_ROWS
    )
    rows = json.loads(rows_json.splitlines()[-1])

    old_names = {path.stem for path in (ROOT / "tests/fixtures/old_migrations/sqlite/support").glob("0*.py")}
    newer = sorted(path.stem for path in (ROOT / "support/migrations").glob("0*.py") if path.stem not in old_names)
    applied = [line.split("Applying ", 1)[1].split("...")[0] for line in upgrade.splitlines() if "Applying " in line]
    assert applied == [f"support.{name}" for name in newer]
    assert rows == {
        "conversations": 1,
        "summary": "before the upgrade",
        "pk_type": "ObjectId" if settings.USE_MONGODB else "int",
        "assigned_to": "upgrade-staff",
        "rated_message_is_the_message": True,
        "message_price_is_seeded": True,
        "note_author": "upgrade-staff",
    }
