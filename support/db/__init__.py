"""Every difference between the two databases (SQLite and MongoDB through django-mongodb-backend), in one place.

Nothing else tests `connection.vendor`, touches the backends' private attributes or imports pymongo: the rest
of the code asks the questions here (is a write all or nothing? is a transaction open? how do I ping?).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from time import sleep
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction

from support.db.prepared import row_by, row_by_pk, row_update, rows_insert
from support.db.shapes import mongodb_query_shapes

__all__ = ["mongodb_query_shapes", "row_by", "row_by_pk", "row_update", "rows_insert"]  # shapes: for the app's ready()


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


#: A server that said it has no transactions (a standalone MongoDB) is asked again after this long.
TRANSACTIONS_RECHECK_S = 30.0
#: Where a connection's features note when the server said so (monotonic seconds).
ASKED_AT = "_rezvo_no_transactions_at"
_transactions_seen = False


def writes_are_atomic() -> bool:
    """Whether write_transaction() really is all or nothing on this database.

    The backend asks the server once per connection whether it is a replica set (a private, cached
    attribute). A yes holds for the whole process: SecantusDB answers `hello` without its set's name while
    it shuts down, and a thread that asked then would have written without transactions until it ended. A
    no is asked again every TRANSACTIONS_RECHECK_S, not on every write: a standalone server stays one.
    """
    global _transactions_seen
    if not is_mongodb() or _transactions_seen:
        return True
    features = connection.features
    answers = features.__dict__  # where the backend's cached_property keeps its answer
    now = time.monotonic()
    if "_supports_transactions" in answers and now - answers.setdefault(ASKED_AT, now) >= TRANSACTIONS_RECHECK_S:
        del answers["_supports_transactions"]
    if "_supports_transactions" not in answers:
        answers[ASKED_AT] = now
    supported = bool(getattr(features, "_supports_transactions", False))
    if supported:
        _transactions_seen = True
    return supported


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


def rows_values(queryset: Any, *fields: str) -> list[dict[str, Any]]:
    """`list(queryset.values(*fields))`: the same dicts. On MongoDB each document goes straight into its dict
    and only fields with a converter are converted; the ORM builds a list per row and passes every value
    through its converter machinery, ~30 ms of a 150 ms analytics request over a 30-day window's 1,400
    rollup rows."""
    values = queryset.values(*fields)
    if not is_mongodb():
        return list(values)
    from django.core.exceptions import EmptyResultSet
    from pymongo.errors import PyMongoError

    compiler = values.query.get_compiler(using=values.db)
    compiler.pre_sql_setup()
    try:
        cursor = compiler.build_query(compiler.columns).get_cursor()
    except EmptyResultSet:
        return []
    query = values.query
    names = [*query.extra_select, *query.values_select, *query.annotation_select]
    pairs = list(zip(names, [column for column, _ in compiler.columns], strict=True))
    converted = [
        (names[index], functions, expression)
        for index, (functions, expression) in compiler.get_converters(
            [selected[0] for selected in compiler.select[: compiler.col_count]]
        ).items()
    ]
    conn = compiler.connection
    try:
        rows = [{name: document.get(column) for name, column in pairs} for document in cursor]
    except PyMongoError as exc:
        raise DatabaseError from exc
    # The counters' only converter turns BSON's Int64 into int: inline, it is a third of the per-value cost.
    ints = [name for name, functions, _ in converted if functions == [conn.ops.convert_integerfield_value]]
    converted = [entry for entry in converted if entry[0] not in ints]
    for row in rows:
        for name in ints:
            if (value := row[name]) is not None:
                row[name] = int(value)
        for name, functions, expression in converted:
            for function in functions:
                row[name] = function(row[name], expression, conn)
    return rows


_PAGE_STAGES = frozenset({"$project", "$addFields", "$sort", "$skip", "$limit"})


def _mongodb_page(queryset: Any, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]] | None:
    """The count and the page's documents in one aggregate (the filter once, then a $facet of a $count and the
    page), when the query is at most one $match followed by stages that keep every document; else None."""
    from django.core.exceptions import EmptyResultSet

    page = queryset.values("pk")[offset : offset + limit]
    compiler = page.query.get_compiler(using=page.db)
    compiler.pre_sql_setup()
    try:
        query = compiler.build_query(compiler.columns)
    except EmptyResultSet:
        return 0, []
    pipeline = query.get_pipeline()
    head = pipeline[:1] if pipeline and list(pipeline[0]) == ["$match"] else []
    rest = pipeline[len(head) :]
    if any(len(stage) != 1 or next(iter(stage)) not in _PAGE_STAGES for stage in rest):
        return None
    # The page's whole documents: a projection that merely keeps fields is work for every document, and a
    # page of the model's own rows is built from them (_page_rows).
    rest = [stage for stage in rest if not ("$project" in stage and all(v == 1 for v in stage["$project"].values()))]
    facet = {"$facet": {"count": [{"$count": "n"}], "page": rest}}
    (found,) = compiler.collection.aggregate([*head, facet], session=compiler.connection.session)
    return (found["count"][0]["n"] if found["count"] else 0), found["page"]


def _whole_rows(queryset: Any) -> bool:
    """Whether the queryset's rows are its model's own fields and nothing else, so that its documents are
    its rows: no join, annotation, deferred field, prefetch or other iterable."""
    from django.db.models.query import ModelIterable

    query = queryset.query
    return (
        queryset._iterable_class is ModelIterable
        and not query.select_related
        and not query.annotations
        and not query.extra
        and query.deferred_loading == (frozenset(), True)
        and not queryset._prefetch_related_lookups
        and not queryset._known_related_objects
    )


def _page_rows(queryset: Any, documents: list[dict[str, Any]]) -> list[Any]:
    """The model instances the queryset would give for these documents: its compiler's columns, through
    its converters, into Model.from_db, as the ORM's iterable does for a query without joins."""
    compiler = queryset.query.get_compiler(using=queryset.db)
    compiler.pre_sql_setup()
    rows = [compiler._make_result(document, compiler.columns) for document in documents]
    converters = compiler.get_converters([selected[0] for selected in compiler.select[: compiler.col_count]])
    if converters:
        rows = list(compiler.apply_converters(rows, converters))
    model = queryset.model
    names = [selected[0].target.attname for selected in compiler.select[: compiler.col_count]]
    return [model.from_db(queryset.db, names, row) for row in rows]


def page_with_count(queryset: Any, offset: int, limit: int) -> tuple[int, list[Any]]:
    """`queryset.count()` and `list(queryset[offset:offset + limit])`. On MongoDB the count and the page come
    from one aggregate: the ticket list's count and page each walked every ticket of the queue (SecantusDB:
    18 + 30 ms; together 30). A page of the model's own rows is built from the documents; one that joins
    or defers is read again by pk (SecantusDB: 7-8 ms for 50 rows)."""
    if is_mongodb():
        from pymongo.errors import PyMongoError

        try:
            found = _mongodb_page(queryset, offset, limit)
        except PyMongoError as exc:
            raise DatabaseError from exc
        if found is not None:
            count, documents = found
            if _whole_rows(queryset):
                return count, _page_rows(queryset, documents)
            pks = [document["_id"] for document in documents]
            # In the page's order, so the database need not sort them again.
            rows = {row.pk: row for row in queryset.filter(pk__in=pks).order_by()} if pks else {}
            return count, [rows[pk] for pk in pks if pk in rows]
    return queryset.count(), list(queryset[offset : offset + limit])


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
