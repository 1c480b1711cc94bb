"""Every difference between the two databases (SQLite and MongoDB through django-mongodb-backend), in one place.

Nothing else tests `connection.vendor`, touches the backends' private attributes or imports pymongo: the rest
of the code asks the questions here (is a write all or nothing? is a transaction open? how do I ping?).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
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


def _reads_joined(value: Any, aliases: frozenset[str]) -> bool:
    """Whether a $match (or any part of it) may read a joined document: a field path or key under one of
    `aliases`, or $$ROOT / $$CURRENT (the whole document). A user's string that merely looks like such a
    path answers True too: the join then keeps its place, which is only slower."""
    if isinstance(value, dict):
        return any(_reads_joined(k, aliases) or _reads_joined(v, aliases) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_reads_joined(v, aliases) for v in value)
    if not isinstance(value, str):
        return False
    if value.startswith("$$"):
        return value[2:].split(".", 1)[0] in {"ROOT", "CURRENT"}
    return value.lstrip("$").split(".", 1)[0] in aliases


def _match_before_joins(get_pipeline: Callable[[Any], list[dict[str, Any]]]) -> Callable[[Any], list[dict[str, Any]]]:
    def get_pipeline_match_first(query: Any) -> list[dict[str, Any]]:
        joins, match = query.lookup_pipeline, query.match_mql
        if not joins or not match or query.search_pipeline or query.subqueries:
            return get_pipeline(query)
        aliases = frozenset(stage["$lookup"]["as"] for stage in joins if "$lookup" in stage)
        if _reads_joined(match, aliases):
            return get_pipeline(query)
        query.lookup_pipeline, query.match_mql = [{"$match": match}, *joins], None
        try:
            return get_pipeline(query)
        finally:
            query.lookup_pipeline, query.match_mql = joins, match

    get_pipeline_match_first.match_first = True  # type: ignore[attr-defined]
    return get_pipeline_match_first


def _operators(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(str(k).startswith("$") for k in value)


def _negated(clause: Any) -> dict[str, Any] | None:
    """One $nor clause as a field condition, when it is one field's equality or $in; else None."""
    if not isinstance(clause, dict) or len(clause) != 1:
        return None
    ((field, value),) = clause.items()
    if field.startswith("$"):
        return None
    if _operators(value):
        return {field: {"$nin": value["$in"]}} if list(value) == ["$in"] else None
    # A document or a regular expression is no plain equality ($ne refuses a regular expression).
    return None if isinstance(value, dict) or hasattr(value, "pattern") else {field: {"$ne": value}}


def _null_test(either: Any) -> str | None:
    """The field of the backend's `IS NULL`, [{field: {$exists: false}}, {field: null}]; else None."""
    if not isinstance(either, list) or len(either) != 2 or not isinstance(either[1], dict) or len(either[1]) != 1:
        return None
    field = next(iter(either[1]))
    if field.startswith("$") or either != [{field: {"$exists": False}}, {field: None}]:
        return None
    return str(field)


def _clauses(match: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The one-field clauses `match` is the AND of: nested $and opened, a $nor of equalities as $ne / $nin,
    `field IS NULL` ({$or: [{field: {$exists: false}}, {field: null}]}, which {field: null} alone matches)."""
    for key, value in match.items():
        if key == "$and" and all(isinstance(c, dict) for c in value):
            for clause in value:
                yield from _clauses(clause)
        elif key == "$nor" and all(_negated(c) is not None for c in value):
            for clause in value:
                yield _negated(clause)  # type: ignore[misc]
        elif key == "$or" and (field := _null_test(value)):
            yield {field: None}
        else:
            yield {key: value}


def _index_friendly(match: dict[str, Any]) -> dict[str, Any]:
    """`match` as one flat document of field conditions where it can be, for the same documents: SecantusDB
    plans an index only for a filter without top-level operators ($and, $or, $nor), and the backend nests
    every condition in $and (an update of a conversation by pk scanned the collection)."""
    flat: dict[str, Any] = {}
    rest: list[dict[str, Any]] = []
    for clause in _clauses(match):
        ((key, value),) = clause.items()
        if key not in flat:
            flat[key] = value
        elif _operators(flat[key]) and _operators(value) and not set(flat[key]) & set(value):
            flat[key] = {**flat[key], **value}
        else:
            rest.append(clause)
    if rest:
        flat["$and"] = rest
    # SecantusDB tries the fields in order and takes the first index that serves one: a pk comes first.
    return dict(sorted(flat.items(), key=lambda item: item[0] != "_id" or _operators(item[1])))


def _flat_match(build_query: Callable[..., Any]) -> Callable[..., Any]:
    def build_query_flat_match(compiler: Any, *args: Any, **kwargs: Any) -> Any:
        query = build_query(compiler, *args, **kwargs)
        if query.match_mql:
            query.match_mql = _index_friendly(query.match_mql)
        return query

    build_query_flat_match.flat_match = True  # type: ignore[attr-defined]
    return build_query_flat_match


def mongodb_query_shapes() -> None:
    """On MongoDB, build queries in the shape a planner without MongoDB's rewrites (SecantusDB) serves from an
    index; the same documents either way. Called once, from the app's ready().

    Filter before joining: django-mongodb-backend puts a select_related's $lookup stages ahead of the query's
    $match, so a fetch by pk joined every document of the collection first (a conversation with its assignee:
    460 ms at 1,600 conversations, 2 ms without the join). MongoDB's optimizer moves such a $match ahead;
    SecantusDB's does not. Only a $match that reads no joined field moves: filtering a document before or
    after the stages that add its joined field keeps the same documents, in the same order.
    Flat filters: the backend nests every condition in $and, and SecantusDB plans no index for a filter with
    a top-level operator, so an update by pk scanned the collection; see _index_friendly()."""
    if "mongodb" not in settings.DATABASES["default"]["ENGINE"]:
        return
    from django_mongodb_backend.compiler import SQLCompiler  # type: ignore[import-untyped]
    from django_mongodb_backend.query import MongoQuery  # type: ignore[import-untyped]

    if not getattr(MongoQuery.get_pipeline, "match_first", False):
        MongoQuery.get_pipeline = _match_before_joins(MongoQuery.get_pipeline)
    if not getattr(SQLCompiler.build_query, "flat_match", False):
        SQLCompiler.build_query = _flat_match(SQLCompiler.build_query)


def row_update(
    model: type[Any],
    *,
    pk: Any,
    where: Mapping[str, Any],
    at_most: Mapping[str, int],
    add: Mapping[str, int],
    assign: Mapping[str, Any],
    raise_to: Mapping[str, Any],
) -> int:
    """One conditional update of the row `pk`, for a hot path: the fields in `where` equal their values
    (None: is null) and those in `at_most` are <= theirs; then `add` is added, `assign` set, and each field
    in `raise_to` becomes the greater of it and the value (a null field takes the value). Returns the rows
    matched (0 or 1).

    The same statement as QuerySet.filter().update() with F() and Case(), without the ORM's query compiler,
    which cost more CPU than the rest of a logged turn's writes together; on MongoDB one update with $inc,
    $set and $max instead of a pipeline update, on the open transaction's session."""
    opts = model._meta
    conn: Any = connections["default"]

    def prep(name: str, value: Any) -> Any:
        return opts.get_field(name).get_db_prep_value(value, connection=conn)

    def column(name: str) -> str:
        return str(opts.get_field(name).column)

    if is_mongodb():
        match: dict[str, Any] = {"_id": prep(opts.pk.name, pk)}
        match.update({column(name): prep(name, value) for name, value in where.items()})
        match.update({column(name): {"$lte": value} for name, value in at_most.items()})
        changes: dict[str, Any] = {
            "$inc": {column(name): value for name, value in add.items()},
            "$set": {column(name): prep(name, value) for name, value in assign.items()},
            "$max": {column(name): prep(name, value) for name, value in raise_to.items()},
        }
        collection = conn.get_collection(opts.db_table)
        done = collection.update_one(match, {k: v for k, v in changes.items() if v}, session=conn.session)
        return int(done.matched_count)
    quote = conn.ops.quote_name
    sets = [f"{c} = {c} + %s" for c in map(quote, map(column, add))]
    sets += [f"{c} = %s" for c in map(quote, map(column, assign))]
    sets += [f"{c} = CASE WHEN {c} > %s THEN {c} ELSE %s END" for c in map(quote, map(column, raise_to))]
    tests = [f"{quote(opts.pk.column)} = %s"]
    tests += [f"{quote(column(n))} {'IS NULL' if v is None else '= %s'}" for n, v in where.items()]
    tests += [f"{c} <= %s" for c in map(quote, map(column, at_most))]
    params: list[Any] = [*add.values(), *(prep(n, v) for n, v in assign.items())]
    for name, value in raise_to.items():
        params += [prep(name, value)] * 2
    params += [prep(opts.pk.name, pk), *(prep(n, v) for n, v in where.items() if v is not None), *at_most.values()]
    with conn.cursor() as cursor:
        cursor.execute(f"UPDATE {quote(opts.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(tests)}", params)
        return int(cursor.rowcount)


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
