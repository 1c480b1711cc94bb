"""Query shapes for MongoDB servers without MongoDB's query rewrites (SecantusDB, which the MongoDB leg of
the tests and benchmarks runs on): the same documents, in filters and pipelines such a server serves from an
index. Part of support.db, where every difference between the two databases lives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from django.conf import settings


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
    flat = {key: _bounded(value) for key, value in flat.items()}
    # SecantusDB tries the fields in order and takes the first index that serves one: a pk, or a list of
    # them, comes first.
    return pinned_checks(dict(sorted(flat.items(), key=lambda item: item[0] != "_id" or not _points(item[1]))))


def _points(condition: Any) -> bool:
    """Whether a condition on _id names the documents: a value, or {$in: [values]}."""
    if not _operators(condition):
        return True
    return list(condition) == ["$in"] and all(_plain(value) for value in condition["$in"])


_BOUNDS = ("$gt", "$gte", "$lt", "$lte")
_BOUND_TYPES = (str, int, float, date)  # datetime is a date


def _bounded(condition: Any) -> Any:
    """A field's range without the not-null test the backend adds to it ({$exists: true, $ne: null}): a
    bound of a scalar type matches only values of its type, never null or a missing field. SecantusDB plans
    an index only for a condition made of range operators: the analytics window over a rollup collection
    was a scan of the whole collection (186 ms of a 383 ms request at 120 days of rollups)."""
    if not _operators(condition) or not any(
        isinstance(condition.get(op), _BOUND_TYPES) and not isinstance(condition.get(op), bool) for op in _BOUNDS
    ):
        return condition
    kept = {op: v for op, v in condition.items() if (op, v) not in (("$exists", True), ("$ne", None))}
    return kept


def _plain(value: Any) -> bool:
    return not isinstance(value, dict | list | tuple) and not hasattr(value, "pattern")


def pinned_checks(match: dict[str, Any]) -> dict[str, Any]:
    """A flat filter that pins `_id` to one value, with its other fields' plain equalities written as
    {$not: {$ne: value}}: the same document (null also matches a missing field, as `field: null` does).

    SecantusDB looks up an index for each field of a filter whose condition is a value or a range, reading
    its index catalogue every time: the counters' update of a logged pair, checked on 11 fields, cost it
    4.5-6 ms of CPU against 1.3 ms by _id alone, and 2.6-3.4 ms in this form. MongoDB serves either from
    the _id index."""
    if "_id" not in match or not _plain(match["_id"]):
        return match
    return {
        key: {"$not": {"$ne": value}} if key != "_id" and not key.startswith("$") and _plain(value) else value
        for key, value in match.items()
    }


def _every_column(query: Any) -> bool:
    """Whether the query's $project keeps every column of its model as it is stored (all `1`, the pk aside),
    with no stage that reshapes documents: removing it then changes no value the results are read from."""
    project = query.project_fields
    if (
        query.aggregation_pipeline
        or query.combinator_pipeline
        or query.subquery_lookup
        or query.lookup_pipeline
        or query.search_pipeline
        or any(value != 1 for value in project.values())
    ):
        return False
    meta = query.query.model._meta
    return {field.column for field in meta.concrete_fields if not field.primary_key} <= set(project)


# The backend's COUNT(*): 1 for each row unless the type of the constant true is missing or null, which it
# never is. SecantusDB evaluates it for each document (a count of 543 tickets: 25 ms, 18 ms with 1).
_COUNT_ROW = {"$cond": {"if": {"$in": [{"$type": {"$literal": True}}, ["missing", "null"]]}, "then": None, "else": 1}}


def _count_rows_folded(value: Any) -> Any:
    if value == _COUNT_ROW:
        return 1
    if isinstance(value, dict):
        return {key: _count_rows_folded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_count_rows_folded(item) for item in value]
    return value


class _Kept(Exception):
    """A name to merge is used where renaming it is not known to keep the results."""


def _renamed(value: Any, renames: dict[str, str], *, keys: bool) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        name = value[1:].split(".", 1)[0]
        if name in renames:
            if "." in value:
                raise _Kept
            return f"${renames[name]}"
        return value
    if isinstance(value, dict):
        if not keys and renames.keys() & value.keys():
            raise _Kept
        return {renames.get(k, k): _renamed(v, renames, keys=keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(item, renames, keys=keys) for item in value]
    return value


def _accumulators_shared(pipeline: list[Any], project: Any, others: list[Any]) -> tuple[list[Any], Any]:
    """A $group that computes the same accumulator twice, once per name, computes it once: the backend gives
    an aggregate used by both the output and an ORDER BY or HAVING a second, internal name (__aggregationN),
    and SecantusDB evaluates each for every document (the top questions of a 30-day window: 34 ms with
    three sums of one field, 26 with one). Later stages and the projection read the first name instead;
    where the name is used in a way this does not rename (a sort key, a path into it), nothing changes."""
    at = next((i for i, stage in enumerate(pipeline) if "$group" in stage), None)
    if at is None:
        return pipeline, project
    group = pipeline[at]["$group"]
    first: dict[str, str] = {}
    renames: dict[str, str] = {}
    for name, accumulator in group.items():
        key = repr(accumulator)
        if name != "_id" and name.startswith("__aggregation") and key in first:
            renames[name] = first[key]
        elif name != "_id":
            first.setdefault(key, name)
    if not renames:
        return pipeline, project
    try:
        later = [_renamed(stage, renames, keys="$match" in stage and len(stage) == 1) for stage in pipeline[at + 1 :]]
        projected = _renamed(project, renames, keys=False)
        if any(_renamed(other, renames, keys=False) != other for other in others):
            raise _Kept
    except _Kept:
        return pipeline, project
    kept = {"$group": {name: value for name, value in group.items() if name not in renames}}
    return [*pipeline[:at], kept, *later], projected


_RENAMING = frozenset({"$addFields", "$unset", "$project"})
_ORDERING = frozenset({"$sort", "$skip", "$limit"})


def _source_path(key: str, renaming: list[dict[str, Any]]) -> str:
    """The path `key` had before the renaming stages: each stage walked back, a field set from a plain path
    taking that path's name; _Kept where a stage computes, removes or leaves out the key."""
    for stage in reversed(renaming):
        ((name, spec),) = stage.items()
        top = key.split(".", 1)[0]
        if name == "$unset":
            if top in ([spec] if isinstance(spec, str) else spec):
                raise _Kept
            continue
        if any(field.split(".", 1)[0] == top and field != top for field in spec):
            raise _Kept  # a path into the key: not a plain rename
        if name == "$addFields" and top not in spec:
            continue
        value = spec.get(top, 0)
        if name == "$project" and (value is True or (type(value) is int and value == 1)):
            continue  # kept as it is
        if "." in key or not (isinstance(value, str) and value.startswith("$") and not value.startswith("$$")):
            raise _Kept
        key = value[1:]
    return key


def _sorted_before_renames(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A $group's output sorted and cut before the stages that only rename and drop its fields, not after:
    [$group, $addFields, $unset, $project, $sort, $limit] becomes [$group, $sort, $limit, $addFields,
    $unset, $project], each sort key read by its name before the renames. The same documents in the same
    order; SecantusDB runs each of those stages in Python for every group (top questions of a 30-day
    window: 176 groups, 28 -> 23 ms), and MongoDB too then renames only the page."""
    at = next((i for i, stage in enumerate(pipeline) if "$group" in stage), None)
    if at is None:
        return pipeline
    end = at + 1
    while end < len(pipeline) and len(pipeline[end]) == 1 and next(iter(pipeline[end])) in _RENAMING:
        end += 1
    last = end
    while last < len(pipeline) and len(pipeline[last]) == 1 and next(iter(pipeline[last])) in _ORDERING:
        last += 1
    renaming, ordering = pipeline[at + 1 : end], pipeline[end:last]
    if not renaming or not any("$sort" in stage for stage in ordering):
        return pipeline
    try:
        moved = [
            {"$sort": {_source_path(k, renaming): d for k, d in stage["$sort"].items()}} if "$sort" in stage else stage
            for stage in ordering
        ]
    except _Kept:
        return pipeline
    return [*pipeline[: at + 1], *moved, *renaming, *pipeline[last:]]


def _whole_documents(get_pipeline: Callable[[Any], list[dict[str, Any]]]) -> Callable[[Any], list[dict[str, Any]]]:
    def get_pipeline_whole_documents(query: Any) -> list[dict[str, Any]]:
        project, extra, grouped = query.project_fields, query.extra_fields, query.aggregation_pipeline
        if grouped:
            query.aggregation_pipeline, query.project_fields = _accumulators_shared(
                _count_rows_folded(grouped), project, [query.ordering, extra]
            )
        if query.project_fields and _every_column(query):
            query.project_fields = None
        if extra and all(value == f"${key}" for key, value in extra.items()):
            query.extra_fields = None
        try:
            return _sorted_before_renames(get_pipeline(query))
        finally:
            query.project_fields, query.extra_fields, query.aggregation_pipeline = project, extra, grouped

    get_pipeline_whole_documents.whole_documents = True  # type: ignore[attr-defined]
    return get_pipeline_whole_documents


def _flat_match(build_query: Callable[..., Any]) -> Callable[..., Any]:
    def build_query_flat_match(compiler: Any, *args: Any, **kwargs: Any) -> Any:
        query = build_query(compiler, *args, **kwargs)
        if query.match_mql:
            query.match_mql = _index_friendly(query.match_mql)
        return query

    build_query_flat_match.flat_match = True  # type: ignore[attr-defined]
    return build_query_flat_match


#: The first batch asked of a query: every row at once, up to the 16 MiB a server sends in one batch anyway.
ALL_ROWS = 1_000_000


def _one_batch(get_cursor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def get_cursor_one_batch(query: Any) -> Any:
        compiler = query.compiler
        return compiler.collection.aggregate(
            query.get_pipeline(), session=compiler.connection.session, batchSize=ALL_ROWS
        )

    get_cursor_one_batch.one_batch = True  # type: ignore[attr-defined]
    return get_cursor_one_batch


def _as_read(field: Any) -> bool:
    """A JSONField whose values need no decoder of their own: on MongoDB its value is read already decoded."""
    from django.db.models import JSONField

    return isinstance(field, JSONField) and field.decoder is None


def _json_as_read_backend(get_db_converters: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    def get_db_converters_json_as_read(ops: Any, expression: Any) -> list[Any]:
        converters = get_db_converters(ops, expression)
        if _as_read(expression.output_field):
            return [c for c in converters if getattr(c, "__name__", "") != "convert_jsonfield_value"]
        return converters

    get_db_converters_json_as_read.json_as_read = True  # type: ignore[attr-defined]
    return get_db_converters_json_as_read


def _json_as_read_field(get_db_converters: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    def get_db_converters_json_as_read(field: Any, connection: Any) -> list[Any]:
        if connection.vendor == "mongodb" and _as_read(field):
            return []
        return get_db_converters(field, connection)

    get_db_converters_json_as_read.json_as_read = True  # type: ignore[attr-defined]
    return get_db_converters_json_as_read


def _json_as_read() -> None:
    """JSON values as the driver decoded them. A JSON value is a document (or array, string, number) on
    MongoDB; the backend wrote each one out as text for JSONField.from_db_value to parse back (a ticket page's
    500 turns: 1,050 dumps and loads, ~2 ms). The round trip gives back the same value, so both steps go."""
    from django.db.models import JSONField
    from django_mongodb_backend.operations import DatabaseOperations  # type: ignore[import-untyped]

    if not getattr(DatabaseOperations.get_db_converters, "json_as_read", False):
        DatabaseOperations.get_db_converters = _json_as_read_backend(DatabaseOperations.get_db_converters)
    if not getattr(JSONField.get_db_converters, "json_as_read", False):
        JSONField.get_db_converters = _json_as_read_field(JSONField.get_db_converters)  # type: ignore[method-assign]


def mongodb_query_shapes() -> None:
    """On MongoDB, build queries in the shape a planner without MongoDB's rewrites (SecantusDB) serves from an
    index; the same documents either way. Called once, from the app's ready().

    Filter before joining: django-mongodb-backend puts a select_related's $lookup stages ahead of the query's
    $match, so a fetch by pk joined every document of the collection first (a conversation with its assignee:
    460 ms at 1,600 conversations, 2 ms without the join). MongoDB's optimizer moves such a $match ahead;
    SecantusDB's does not. Only a $match that reads no joined field moves: filtering a document before or
    after the stages that add its joined field keeps the same documents, in the same order.
    Flat filters: the backend nests every condition in $and, and SecantusDB plans no index for a filter with
    a top-level operator, so an update by pk scanned the collection; see _index_friendly().
    Whole documents: SecantusDB runs $project and $addFields in Python for each document (the usage rollups
    of a 30-day window: 137 ms with the backend's $project of every column, ~45 ms without), so a $project
    that keeps every column and an $addFields that sets fields to themselves are left out. Results are read
    by column name, so a field the model does not know is never read.
    One batch: the driver asks for a first batch of 101 documents and fetches the rest with a getMore, one
    more round trip for every query that answers more (a ticket page's 500 turns: +5 ms); a query's first
    batch is as large as the server sends in one (16 MiB, as each getMore's is), and a $limit still bounds it.
    JSON values as read: see _json_as_read()."""
    if "mongodb" not in settings.DATABASES["default"]["ENGINE"]:
        return
    from django_mongodb_backend.compiler import SQLCompiler  # type: ignore[import-untyped]
    from django_mongodb_backend.query import MongoQuery, wrap_database_errors  # type: ignore[import-untyped]

    if not getattr(MongoQuery.get_pipeline, "match_first", False):
        MongoQuery.get_pipeline = _match_before_joins(MongoQuery.get_pipeline)
    if not getattr(MongoQuery.get_pipeline, "whole_documents", False):
        MongoQuery.get_pipeline = _whole_documents(MongoQuery.get_pipeline)
    if not getattr(SQLCompiler.build_query, "flat_match", False):
        SQLCompiler.build_query = _flat_match(SQLCompiler.build_query)
    if not getattr(MongoQuery.get_cursor, "one_batch", False):
        MongoQuery.get_cursor = wrap_database_errors(_one_batch(MongoQuery.get_cursor))
    _json_as_read()
