"""A scratch SQLite file and this project's backend connected to it, for the platform tests of the backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from django.db import connection

from rezvo_support.sqlite_file.base import DatabaseWrapper


def scratch_wrapper(path: Path, **options: Any) -> DatabaseWrapper:
    """A WAL database at `path` with one table, t (n INTEGER), and a connection to it with the project's
    settings (`options` added to them)."""
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("CREATE TABLE t (n INTEGER)")
    raw.close()
    settings = {**connection.settings_dict, "NAME": str(path)}
    settings["OPTIONS"] = {**settings.get("OPTIONS", {}), **options}
    return DatabaseWrapper(settings, alias="scratch")
