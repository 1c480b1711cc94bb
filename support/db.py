"""Every difference between the two databases (SQLite and MongoDB through django-mongodb-backend), in one place.

Nothing else tests `connection.vendor`, touches the backends' private attributes or imports pymongo: the rest
of the code asks the questions here (is a write all or nothing? is a transaction open? how do I ping?).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from time import sleep
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction


def _driver_errors() -> tuple[type[Exception], ...]:
    # pymongo (about 20 MB) is imported on the MongoDB leg only, where the backend has loaded it anyway;
    # on SQLite none of its errors can be raised.
    if "mongodb" not in settings.DATABASES["default"]["ENGINE"]:
        return ()
    from pymongo.errors import PyMongoError

    return (PyMongoError,)


#: What a failing database raises: Django's wrapper on SQLite, also the driver's own errors on MongoDB
#: (django-mongodb-backend lets many of pymongo's through unwrapped).
DATABASE_ERRORS: tuple[type[Exception], ...] = (DatabaseError, *_driver_errors())


def connections_close_all() -> None:
    """Close every database connection of this process. Django's close() leaves django-mongodb-backend's
    MongoClient (a pool, with monitor threads) open by design, so that is closed too: gunicorn's master calls
    this before forking, and a forked worker must not share a socket or miss a thread."""
    for wrapper in connections.all(initialized_only=True):
        wrapper.close()
        close_pool = getattr(wrapper, "close_pool", None)
        if close_pool is not None:
            close_pool()


def is_mongodb() -> bool:
    """Whether the default database is MongoDB (django-mongodb-backend), not SQLite."""
    return connection.vendor == "mongodb"


def atomic_is_noop() -> bool:
    """Whether django.db.transaction.atomic() writes nothing back on failure: it is a no-op on
    django-mongodb-backend, whose own atomic() is write_transaction()'s business."""
    return is_mongodb()


def claim_before_transaction() -> bool:
    """Whether a unique claim (an idempotency key) must be inserted before, not inside, a write transaction.

    On MongoDB a duplicate-key error aborts the whole transaction, so the claim goes first on its own; on
    SQLite it goes inside, so the claim and the writes are one IMMEDIATE transaction (one write lock)."""
    return is_mongodb()


def writes_are_atomic() -> bool:
    """Whether write_transaction() really is all or nothing on this database."""
    # The backend learns whether the server is a replica set when it connects (a private attribute).
    return not is_mongodb() or bool(getattr(connection.features, "_supports_transactions", False))


@contextmanager
def write_transaction() -> Iterator[None]:
    """All or nothing: a transaction on SQLite, and on MongoDB when the server is a replica set.

    django.db.transaction.atomic() is a no-op on django-mongodb-backend; its own atomic() needs a
    replica set (or sharded cluster), so a standalone MongoDB server gets no transaction at all. Nor can
    one start inside django's (no-op) atomic block: the backend forbids it. Only the inline task queue
    (HUEY_IMMEDIATE, the tests) gets there, folding rollups inside a request's block.
    """
    if not is_mongodb():
        with transaction.atomic():
            yield
    elif writes_are_atomic() and not connection.in_atomic_block:
        # django-mongodb-backend ships no type information (no py.typed).
        from django_mongodb_backend.transaction import atomic as mongo_atomic  # type: ignore[import-untyped]

        try:
            with mongo_atomic():
                yield
        except BaseException:
            _mongo_session_end()
            raise
    else:
        yield


def _mongo_session_end() -> None:
    """The backend ends its session only on DatabaseError; a driver error (the server gone during commit)
    would leave the dead session on this thread's connection, and the next request would run inside it."""
    session = getattr(connection, "session", None)
    if session is not None:
        with suppress(Exception):
            session.end_session()
        connection.session = None  # type: ignore[attr-defined]  # django-mongodb-backend's own attribute


def in_mongodb_transaction() -> bool:
    """Whether a MongoDB transaction (write_transaction) is open on this thread."""
    return is_mongodb() and bool(getattr(connection, "in_atomic_block_mongo", False))


def rolls_back_with_failure() -> bool:
    """Whether a failure now undoes the writes made so far in this block (a real transaction is open)."""
    if is_mongodb():
        return in_mongodb_transaction()
    return connection.in_atomic_block


def shared_row_write(write: Callable[[], None]) -> bool:
    """Defer a write to a row many conversations share (a daily rollup) until the MongoDB transaction open
    on this thread commits; True when deferred, False when the caller should write now.

    Inside MongoDB transactions two writers updating the same row abort each other (WriteConflict), so it
    is updated right after the commit instead. A crash in between leaves it one turn short (`rebuild_rollups`).
    """
    if not in_mongodb_transaction():
        return False
    connection.on_commit(write)
    return True


def retry_spread(attempt: int) -> None:
    """Before retrying a compare-and-set that lost a race: on MongoDB there is no write lock to queue on,
    so spread the retries (random, growing with `attempt`) so racing writers stop colliding. SQLite's
    IMMEDIATE transactions queue writers already: no wait there."""
    if is_mongodb():
        sleep(random.uniform(0, 0.002 * 2**attempt))


def database_ping() -> None:
    """Raise when the database cannot answer a trivial round trip.

    On SQLite the backend (rezvo_support/sqlite_file) also raises DatabaseFileMissing or
    DatabaseFileReplaced when the file at SQLITE_PATH is gone or is not the one this process opened,
    closing the stale connection; the class name is the 503's reason."""
    if is_mongodb():
        connection.ensure_connection()
        client: Any = connection.connection
        client.admin.command("ping")
    else:
        with connection.cursor() as cursor:
            # A real table, not "SELECT 1": SQLite answers that without opening the database
            # file, so a locked or missing database would still look healthy.
            cursor.execute("SELECT 1 FROM django_migrations LIMIT 1")


def _implicit_and(mql: Any) -> Any:
    """{"$and": [{a: x}, {b: y}]} as {a: x, b: y}: the same documents, but the form every MongoDB-compatible
    server serves from an index. A planner like mongod's flattens $and itself; SecantusDB (the MongoDB leg
    here) scans the collection for it, so a filter by _id plus a guard read every document."""
    if not isinstance(mql, dict) or list(mql) != ["$and"]:
        return mql
    merged: dict[str, Any] = {}
    for child in mql["$and"]:
        child = _implicit_and(child)
        if not isinstance(child, dict):
            return mql
        for key, condition in child.items():
            if key not in merged:
                merged[key] = condition
            elif _operators(merged[key]) and _operators(condition) and not set(merged[key]) & set(condition):
                # Conditions on one field by different operators ({$gte}, {$lte}, {$ne: null}) share a document.
                merged[key] = {**merged[key], **condition}
            else:  # the same operator twice, an equality, or two $or: keep the $and
                return mql
    return merged


def _operators(condition: Any) -> bool:
    return isinstance(condition, dict) and bool(condition) and all(key.startswith("$") for key in condition)


def query_filters_flatten() -> None:
    """Have django-mongodb-backend write AND filters of distinct fields as one document (see _implicit_and).
    Only the query form changes, never which documents match; on SQLite there is nothing to do."""
    if "mongodb" not in settings.DATABASES["default"]["ENGINE"]:
        return
    from django.db.models.sql.where import WhereNode

    original = WhereNode.as_mql  # type: ignore[attr-defined]  # added by django-mongodb-backend
    if getattr(original, "flattens_and", False):
        return

    def as_mql(self: Any, compiler: Any, connection: Any, as_expr: bool = False) -> Any:
        mql = original(self, compiler, connection, as_expr=as_expr)
        return mql if as_expr else _implicit_and(mql)

    as_mql.flattens_and = True  # type: ignore[attr-defined]
    WhereNode.as_mql = as_mql  # type: ignore[attr-defined]
