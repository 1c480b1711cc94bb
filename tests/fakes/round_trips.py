"""Round trips of a block (issue 13's write-path target): tests/fakes/commands.py's commands, with SQLite's
transaction control (BEGIN, COMMIT: no data to or from the database) counted apart."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.fakes.commands import database_commands

TRANSACTION_CONTROL = ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")


class Trips(list[str]):
    """One entry per round trip (a statement or a command), and the transaction control seen beside them.
    A savepoint is a statement of its own, so it counts as a trip."""

    transactions: list[str]

    def __init__(self) -> None:
        super().__init__()
        self.transactions = []


@contextmanager
def round_trips() -> Iterator[Trips]:
    """The list fills, when the block ends, with one entry per round trip made inside it."""
    trips = Trips()
    with database_commands() as commands:
        yield trips
    for name, text in commands.sent:
        if name == "sql":
            (trips.transactions if text in TRANSACTION_CONTROL else trips).append(text)
        else:
            trips.append(f"{name}: {text}")
