"""Change events: recorded in the writer's transaction, the outbox of the audit log.

Every successful write calls ``record`` in its own unit of work, so the event commits or
rolls back with the change: no event without its change, no change without its event. The
row is the outbox the audit API reads and, later, webhooks and mail are delivered from.
How the events are chained, read and pruned: app/services/audit.py.
"""

import functools
import getpass
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from typing import cast as typed

from flask import g, has_request_context
from sqlalchemy import (
    CTE,
    JSON,
    ColumnElement,
    Row,
    Select,
    String,
    Table,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.engine import Dialect

from app.config import current_settings
from app.db.session import autocommit, db, driver_cursor, driver_execute, transaction
from app.models import AuditEvent
from app.telemetry.request_ids import current_request_id

_events = typed(Table, AuditEvent.__table__)

# Recording on; the benchmark (bench/events.py) turns it off to measure what it costs,
# which includes each write's unit of work (``write_unit``) going back to autocommit().
RECORDING = True

EVENT_COLUMNS = (
    _events.c.id,
    _events.c.occurred_at,
    _events.c.type,
    _events.c.actor_kind,
    _events.c.actor_id,
    _events.c.actor_label,
    _events.c.resource_type,
    _events.c.resource_id,
    _events.c.changes,
    _events.c.request_id,
    _events.c.seq,
    _events.c.hash,
)
EventRow = Row[*tuple[Any, ...]]
Changes = dict[str, list[Any]]
# A row's ._mapping or a plain dict: field name to value.
Fields = Mapping[Any, Any]


def in_one_statement() -> bool:
    """Whether a write and its event go in one statement: PostgreSQL's data-modifying WITH
    (``with_events``), which autocommit() then commits in one round trip."""
    return current_settings().backend == "postgresql"


def write_unit() -> transaction | autocommit:
    """The unit of work of a write that was one statement: still one where the backend
    writes its event in the same statement, else a transaction of two."""
    if not RECORDING or in_one_statement():
        return autocommit()
    if current_settings().backend == "sqlite":
        # Begun on the autocommit engine's connection: no driver-begun transaction on the
        # default engine's, and IMMEDIATE takes the write lock before the row before an
        # update is read, so that read is the transaction's.
        return transaction(begin="BEGIN IMMEDIATE")
    return transaction()


def actor() -> tuple[str, str | None, str | None]:
    """Who is acting: (kind, id, label) of the request's API key or user, or the CLI."""
    if has_request_context():
        # What app.web.auth kept: an API key (KeyInfo) or a user's session (SessionInfo),
        # told apart by their fields (the services that define them record events too).
        principal = g.get("principal")
        if principal is None:
            return "anonymous", None, None
        user_id = getattr(principal, "user_id", None)
        if user_id is None:
            return "api_key", principal.prefix, principal.name
        return "user", str(user_id), f"{principal.username} (session {principal.id})"
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        who = None
    return "cli", None, who


def diff(before: Fields, after: Fields, fields: Sequence[str]) -> Changes:
    """The fields whose value moved, each as [before, after]."""
    return {f: [_plain(before[f]), _plain(after[f])] for f in fields if before[f] != after[f]}


def created(after: Fields, fields: Sequence[str]) -> Changes:
    """Every field of a new resource, each as [None, value]."""
    return {f: [None, _plain(after[f])] for f in fields}


def deleted(before: Fields, fields: Sequence[str]) -> Changes:
    """Every field of a deleted resource, each as [value, None]."""
    return {f: [_plain(before[f]), None] for f in fields}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def values(
    event_type: str,
    resource_type: str,
    resource_id: object,
    changes: Changes,
    actor_of: tuple[str, str | None, str | None] | None = None,
) -> dict[str, Any]:
    """The row of one event (by this request's actor unless given)."""
    kind, actor_id, label = actor_of or actor()
    request_id = current_request_id()
    return {
        "type": event_type,
        "actor_kind": kind,
        "actor_id": actor_id,
        "actor_label": label,
        "resource_type": resource_type,
        "resource_id": None if resource_id is None else str(resource_id),
        "changes": changes,
        "request_id": None if request_id == "-" else request_id,
    }


# Built once: every write runs it.
INSERT_EVENT = insert(_events)
# An event's columns as ``values`` gives them (the rest the database or the sealer sets).
ROW_KEYS = (
    "type",
    "actor_kind",
    "actor_id",
    "actor_label",
    "resource_type",
    "resource_id",
    "changes",
    "request_id",
)


@functools.cache
def _insert_sql(dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
    # INSERT_EVENT as this dialect's SQL, with the order of its parameters if positional;
    # inline: nothing reads the new id, so no RETURNING of it (PostgreSQL's would be added).
    compiled = INSERT_EVENT.inline().compile(dialect=dialect, column_keys=list(ROW_KEYS))
    order = compiled.positiontup
    return compiled.string, None if order is None else tuple(order)


def _in_order(values: Mapping[str, Any], order: tuple[str, ...] | None) -> Any:
    # Named parameters as the driver takes them: by name, or in the compiled order when the
    # dialect's parameters are positional (SQLite's ?, PyMySQL's %s).
    return values if order is None else tuple(values[key] for key in order)


Processor = Callable[[Any], Any] | None


@functools.cache
def _select_sql(
    stmt: Select[Any], dialect: Dialect
) -> tuple[str, tuple[str, ...] | None, tuple[str, ...], tuple[Processor, ...]]:
    # A SELECT as this dialect's SQL, its parameters' order if positional, and its columns'
    # names and result processors (SQLite's and MariaDB's booleans come back as integers).
    compiled = stmt.compile(dialect=dialect)
    order = compiled.positiontup
    columns = tuple(stmt.selected_columns)
    return (
        compiled.string,
        None if order is None else tuple(order),
        tuple(str(column.key) for column in columns),
        tuple(column.type.result_processor(dialect, None) for column in columns),
    )


def row_before(stmt: Select[Any], params: dict[str, Any]) -> dict[str, Any] | None:
    """The one row (or None) of ``stmt``, a SELECT of the values a write's event compares
    (built once, its parameters bound by name), as {column: value}, read in the session's
    current unit of work through its connection's DBAPI cursor as ``record`` writes: past
    Core's execute, its cache key and its result (``bench/events.py --instructions``)."""
    conn = db.session.connection()
    sql, order, names, processors = _select_sql(stmt, conn.dialect)
    cursor = driver_cursor(conn, sql, _in_order(params, order))
    try:
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    return {
        name: value if process is None else process(value)
        for name, value, process in zip(names, row, processors, strict=True)
    }


def record(
    event_type: str,
    resource_type: str,
    resource_id: object,
    changes: Changes | None = None,
    actor_of: tuple[str, str | None, str | None] | None = None,
) -> None:
    """Record one event in the request session's current unit of work (it commits with it)."""
    if not RECORDING:
        return
    row = values(event_type, resource_type, resource_id, changes or {}, actor_of)
    # The statement's SQL, compiled once per dialect, on the session's connection's DBAPI
    # cursor: past the ORM's execute (~230 us of CPU a statement on SQLite), Core's cache
    # key and bind processing, and its execution context. The JSON is json.dumps's, as the
    # JSON type's would be.
    row["changes"] = json.dumps(row["changes"])
    conn = db.session.connection()
    sql, order = _insert_sql(conn.dialect)
    driver_execute(conn, sql, _in_order(row, order))


# One statement for a write and its events (PostgreSQL): the write is a CTE returning its
# row, and an INSERT ... SELECT from it adds the events, which exist only if the write
# matched. The actor and request id are bound per call (``event_params``), so each such
# statement is built once.
def event_rows(
    written: CTE,
    event_type: str | ColumnElement[str],
    resource: tuple[str, ColumnElement[Any]],
    changes: ColumnElement[Any],
    where: ColumnElement[bool] | None = None,
) -> Select[Any]:
    """The SELECT of one event for each row of ``written`` (that ``where`` keeps), about
    ``resource`` (its type, and its id's column)."""
    resource_type, resource_id = resource
    kind = literal(event_type, String) if isinstance(event_type, str) else event_type
    stmt = select(
        kind,
        bindparam("ev_actor_kind", type_=String),
        bindparam("ev_actor_id", type_=String),
        bindparam("ev_actor_label", type_=String),
        literal(resource_type, String),
        cast(resource_id, String),
        cast(changes, JSON),
        bindparam("ev_request_id", type_=String),
    ).select_from(written)
    return stmt if where is None else stmt.where(where)


def with_events(written: CTE, *rows: Select[Any]) -> Select[Any]:
    """SELECT what the write returned, its events inserted by the same statement."""
    source = rows[0] if len(rows) == 1 else union_all(*rows)
    recorded = insert(_events).from_select(list(ROW_KEYS), source).cte("recorded")
    return select(*written.c).add_cte(recorded)


def event_params() -> dict[str, Any]:
    """The bound values of ``event_rows``: this request's actor and request id."""
    kind, actor_id, label = actor()
    request_id = current_request_id()
    return {
        "ev_actor_kind": kind,
        "ev_actor_id": actor_id,
        "ev_actor_label": label,
        "ev_request_id": None if request_id == "-" else request_id,
    }


def pairs(
    fields: Mapping[str, tuple[ColumnElement[Any], ColumnElement[Any]]], *, only_changed: bool
) -> ColumnElement[Any]:
    """Changes as SQL: {field: [before, after]}, only the fields that moved if asked."""
    args: list[Any] = []
    for name, (before, after) in fields.items():
        pair: ColumnElement[Any] = func.jsonb_build_array(before, after)
        if only_changed:
            pair = case((before.is_distinct_from(after), pair))
        args += [literal(name, String), pair]
    built = func.jsonb_build_object(*args)
    return func.jsonb_strip_nulls(built) if only_changed else built


def event_item(row: EventRow) -> dict[str, Any]:
    """The row as AuditEventRead's fields, in order."""
    return {
        "id": row.id,
        "occurred_at": row.occurred_at,
        "type": row.type,
        "actor": {"kind": row.actor_kind, "id": row.actor_id, "label": row.actor_label},
        "resource": {"type": row.resource_type, "id": row.resource_id},
        "changes": row.changes,
        "request_id": row.request_id,
        "seq": row.seq,
        "hash": row.hash,
    }
