"""Count database round trips: statements on SQLite, commands on MongoDB (a pymongo CommandListener).

Django's query log is the SQLite count (each statement is one call into the database). On MongoDB the
driver's own command events are counted, so nothing the backend does outside its query log escapes
(sessions, transactions, bulk writes). Heartbeats are not commands and are not counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

_listener: Any = None


def _mongo_listener() -> Any:
    """One listener for the process, registered before the client is (re)made: pymongo reads the global
    listeners when a client is created."""
    global _listener
    if _listener is not None:
        return _listener
    from pymongo import monitoring

    class Recorder(monitoring.CommandListener):
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.active: list[list[str]] = []

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            with self.lock:
                for log in self.active:
                    collection = event.command.get(event.command_name)
                    log.append(f"{event.command_name} {collection if isinstance(collection, str) else ''}".strip())

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    _listener = Recorder()
    monitoring.register(_listener)
    # The backend's client was made before the listener existed: make a new one.
    connection.close()
    close_pool = getattr(connection, "close_pool", None)
    if close_pool is not None:
        close_pool()
    return _listener


#: Transaction control on SQLite: Django's query log has BEGIN and COMMIT, which carry no data to or from the
#: database. round_trips() leaves them out and counts them in `transactions`; a savepoint is counted as a trip.
TRANSACTION_CONTROL = ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")


class Trips(list[str]):
    """One entry per round trip (a statement or a command), and the transaction control seen beside them."""

    transactions: list[str]

    def __init__(self) -> None:
        super().__init__()
        self.transactions = []


@contextmanager
def round_trips() -> Iterator[Trips]:
    """The list fills with one entry per round trip made inside the block."""
    log = Trips()
    if connection.vendor == "mongodb":
        listener = _mongo_listener()
        connection.ensure_connection()
        with listener.lock:
            listener.active.append(log)
        try:
            yield log
        finally:
            with listener.lock:
                listener.active.remove(log)
        return
    with CaptureQueriesContext(connection) as queries:
        yield log
    for query in queries.captured_queries:
        (log.transactions if query["sql"] in TRANSACTION_CONTROL else log).append(query["sql"])
