"""`manage.py migrate`, which on SQLite first creates the database file when there is none.

The SQLite backend (rezvo_support/sqlite_file) never creates a missing file, so a database that
vanished is an error rather than a new empty one; creating it is this command's job on a fresh machine.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from rezvo_support.sqlite_file.base import DatabaseWrapper, database_file_create


class Command(migrate.Command):
    def execute(self, *args: Any, **options: Any) -> Any:
        # Before the system checks, which may already open the database.
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        if isinstance(connection, DatabaseWrapper):
            path = connection._file_path()
            if path is not None and database_file_create(path) and options.get("verbosity", 1) >= 1:
                self.stdout.write(f"Created the empty database file {path}.")
        return super().execute(*args, **options)
