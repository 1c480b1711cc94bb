"""What a block of code sends to the database: SQL statements on SQLite, wire commands on MongoDB.

On MongoDB a pymongo CommandListener sees every command the driver sends (aggregate, find, getMore, ...),
not only the backend's query calls; pymongo hands a globally registered listener only to clients created
after it, so tests/conftest.py calls listen() at import, before the test database is connected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection
from django.test.utils import CaptureQueriesContext

_recording: list[Commands] = []
_listening: list[bool] = []


@dataclass
class Commands:
    """The commands sent inside a `database_commands()` block: (name, full text) pairs."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    @property
    def queries(self) -> list[str]:
        """Every command but getMore: a cursor's further batches of one query (a result over the first
        batch of 101 documents), whose number follows the size of the answer, not the number of queries."""
        return [text for name, text in self.sent if name != "getMore"]

    def containing(self, needle: str) -> list[str]:
        return [text for _, text in self.sent if needle in text]


def listen() -> None:
    """Register the command listener for the MongoDB clients made from now on (no effect on SQLite); once."""
    if _listening:
        return
    _listening.append(True)
    from pymongo import monitoring

    class _Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            for commands in _recording:
                commands.sent.append((event.command_name, str(event.command)))

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    monitoring.register(_Listener())


@contextmanager
def database_commands() -> Iterator[Commands]:
    """The commands sent to the default database inside the block (filled in when the block ends on SQLite)."""
    commands = Commands()
    if connection.vendor == "mongodb":
        if not _listening:  # outside the test suite (bench/write_path.py): a new client, made after the listener
            listen()
            connection.close()
            connection.close_pool()  # type: ignore[attr-defined]  # django-mongodb-backend's
        connection.ensure_connection()
        _recording.append(commands)
        try:
            yield commands
        finally:
            _recording.remove(commands)
        return
    with CaptureQueriesContext(connection) as captured:
        yield commands
    commands.sent = [("sql", query["sql"]) for query in captured.captured_queries]
