"""Statements a hot path runs on every request, prepared once per connection instead of compiled by the ORM
each time: a guarded counter update (row_update), a fetch by unique fields (row_by), an insert (rows_insert).
Part of support.db: each speaks both databases (SQL on SQLite, one driver command on MongoDB)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import DatabaseError, connections
from django.db.models import IntegerField

from support.db.shapes import pinned_checks


def _is_mongodb(conn: Any) -> bool:
    return bool(conn.vendor == "mongodb")


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

    if _is_mongodb(conn):
        match: dict[str, Any] = {"_id": prep(opts.pk.name, pk)}
        match.update({column(name): None if value is None else prep(name, value) for name, value in where.items()})
        match.update({column(name): {"$lte": value} for name, value in at_most.items()})
        match = pinned_checks(match)
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


#: The fetches row_by() prepared, by model and fields, on each connection wrapper (Django keeps one a thread).
_FETCHES = "_rezvo_fetches"
#: Stands for an integer field's value while the ORM compiles a fetch (_mark).
_MARK = -7_293_614_811
#: The inserts rows_insert() prepared, by model and number of rows, on each connection wrapper.
_INSERTS = "_rezvo_inserts"
#: MongoDB's error code for a write a unique index refuses.
DUPLICATE_KEY = 11000


class _Fetch:
    """One model's fetch of the first row whose fields equal given values, compiled by the ORM once: its SQL
    (SQLite) or columns (MongoDB), and the converters the ORM applies to what the database returns."""

    def __init__(self, model: type[Any], conn: Any, names: tuple[str, ...]) -> None:
        self.model, self.conn, self.mongodb = model, conn, _is_mongodb(conn)
        opts = model._meta
        self.fields = [opts.pk if name == "pk" else opts.get_field(name) for name in names]
        pairs = enumerate(zip(names, self.fields, strict=True))
        marks = {} if self.mongodb else {name: _mark(at, field) for at, (name, field) in pairs}
        compiler = model._default_manager.filter(**marks).order_by()[:1].query.get_compiler(connection=conn)
        compiler.setup_query()
        fields = compiler.klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        selected = [column for column, _sql, _alias in compiler.select]
        self.attnames = [column.target.attname for column in selected[self.start : self.end]]
        self.columns = [column.target.column for column in selected]
        self.converters = compiler.get_converters(selected)
        self.compiler = compiler
        if not self.mongodb:
            self.sql, params = compiler.as_sql()
            self.params = list(params)
            self.places = [self.params.index(mark) for mark in marks.values()]

    def __call__(self, values: tuple[Any, ...]) -> Any:
        pairs = zip(self.fields, values, strict=True)
        prepared = [field.get_db_prep_value(value, connection=self.conn) for field, value in pairs]
        if self.mongodb:
            collection = self.conn.get_collection(self.model._meta.db_table)
            match = {str(field.column): value for field, value in zip(self.fields, prepared, strict=True)}
            found = collection.find_one(match, session=self.conn.session)
            row = None if found is None else [found.get(column) for column in self.columns]
        else:
            params = [*self.params]
            for place, value in zip(self.places, prepared, strict=True):
                params[place] = value
            with self.conn.cursor() as cursor:
                cursor.execute(self.sql, params)
                row = cursor.fetchone()
        if row is None:
            return None
        if self.converters:
            row = next(iter(self.compiler.apply_converters([row], self.converters)))
        return self.model.from_db(self.conn.alias, self.attnames, row[self.start : self.end])


def _mark(at: int, field: Any) -> Any:
    """A value that stands for the `at`th looked-up field while the ORM compiles the fetch, found again in
    the compiled parameters: never a real value (keys count up from 1; no stored text starts with NUL)."""
    target = getattr(field, "target_field", field)
    return _MARK - at if isinstance(target, IntegerField) else f"\x00rezvo-mark-{at}"


def row_by(model: type[Any], **equal: Any) -> Any:
    """The first `model` row whose fields equal these values (`pk` for the primary key; a foreign key by
    its name, given the related row's pk), or None; no related rows joined. Meant for a lookup on a unique
    key on a hot path: the fetch is compiled once per connection and set of fields, where the ORM compiled
    it on every call (about as much CPU as the database work of the turns a widget request then logs)."""
    conn: Any = connections["default"]
    names = tuple(equal)
    fetches = conn.__dict__.setdefault(_FETCHES, {})
    fetch = fetches.get((model, names)) or fetches.setdefault((model, names), _Fetch(model, conn, names))
    return fetch(tuple(equal.values()))


def row_by_pk(model: type[Any], pk: Any) -> Any:
    """The `model` row with primary key `pk`, or None (row_by): the widget's read of its conversation."""
    return row_by(model, pk=pk)


class _Insert:
    """Inserting `rows` new rows of one model (primary keys from the database), compiled once: bulk_create's
    columns and values, its INSERT ... RETURNING on SQLite."""

    def __init__(self, model: type[Any], conn: Any, rows: int) -> None:
        opts = model._meta
        self.model, self.conn, self.mongodb = model, conn, _is_mongodb(conn)
        self.fields = [f for f in opts.concrete_fields if not f.primary_key and not f.generated]
        if not self.mongodb:
            quote = conn.ops.quote_name
            row = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
            self.sql = (
                f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in self.fields)}) "
                f"VALUES {', '.join([row] * rows)} RETURNING {quote(opts.pk.column)}"
            )

    def __call__(self, objs: list[Any]) -> None:
        rows = [[f.get_db_prep_save(f.pre_save(obj, True), connection=self.conn) for f in self.fields] for obj in objs]
        if self.mongodb:
            keys = self._mongodb(rows)
        else:
            with self.conn.cursor() as cursor:
                cursor.execute(self.sql, [value for row in rows for value in row])
                keys = [key for (key,) in cursor.fetchall()]
        for obj, key in zip(objs, keys, strict=True):
            obj.pk = key
            obj._state.adding, obj._state.db = False, self.conn.alias

    def _mongodb(self, rows: list[list[Any]]) -> list[Any]:
        from django.db import IntegrityError
        from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

        for row in rows:
            # What the backend's insert refuses (MongoDB has no NOT NULL).
            missing = next((f.name for f, v in zip(self.fields, row, strict=True) if v is None and not f.null), None)
            if missing:
                raise IntegrityError(f"You can't set {missing} (a non-nullable field) to None.")
        documents = [{f.column: v for f, v in zip(self.fields, row, strict=True)} for row in rows]
        try:
            collection = self.conn.get_collection(self.model._meta.db_table)
            return list(collection.insert_many(documents, session=self.conn.session).inserted_ids)
        except DuplicateKeyError as exc:
            raise IntegrityError from exc
        except BulkWriteError as exc:
            refused = exc.details.get("writeErrors") or [{}]
            if all(error.get("code") == DUPLICATE_KEY for error in refused):
                raise IntegrityError from exc
            raise DatabaseError from exc
        except PyMongoError as exc:
            raise DatabaseError from exc


def rows_insert(model: type[Any], objs: list[Any]) -> None:
    """Insert `objs` (new `model` rows, without primary keys) in one round trip and give each its key:
    bulk_create() for the turns a request logs, with the statement prepared once per connection and size."""
    if not objs:
        return
    conn: Any = connections["default"]
    inserts = conn.__dict__.setdefault(_INSERTS, {})
    insert = inserts.get((model, len(objs))) or inserts.setdefault((model, len(objs)), _Insert(model, conn, len(objs)))
    insert(objs)
