"""Rules of the users resource. Services flush, never commit."""

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Select,
    Table,
    bindparam,
    case,
    cast,
    delete,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import result_tuple
from sqlalchemy.exc import IntegrityError

from app.db import user_search
from app.db.session import db
from app.db.types import candidate_ids, folded, folded_match, utcnow
from app.errors import ConflictError, NotFoundError
from app.models import User
from app.schemas.common import Versions
from app.schemas.users import MeUpdate, UserCreate, UserListQuery, UserUpdate
from app.services import events
from app.services.pagination import SortKey, next_cursor, paginate
from app.services.versions import at_versions, missing_or_changed

# The unique indexes are the only guard against duplicates; their names say which field.
_UNIQUE_INDEX_FIELDS = {
    "uq_user_account_username_lower": "username",
    "uq_user_account_email_lower": "email",
}

# Work that answers a request selects columns, not entities, in Core statements on the
# model's own table: no identity map, no instance state, no ORM compile and bulk-DML
# layers. Measured per request (bench/cpu.py): INSERT ... RETURNING ~360 us of CPU this
# way against ~1,000 us through insert(User); a GET by id ~60 us less; lists ~20 us a row.
_users = typed(Table, User.__table__)
USER_COLUMNS = (
    _users.c.id,
    _users.c.username,
    _users.c.email,
    _users.c.active,
    _users.c.created_at,
    _users.c.updated_at,
)
UserRow = Row[int, str, str, bool, datetime, datetime]
# The columns' names, which are UserRead's fields in order (the list is written from rows).
USER_FIELDS = tuple(column.name for column in USER_COLUMNS)


# One user with its version last: the representation, then what its ETag is made of.
VERSIONED_COLUMNS = (*USER_COLUMNS, _users.c.version)
VersionedUserRow = Row[int, str, str, bool, datetime, datetime, int]


def user_item(row: UserRow | VersionedUserRow) -> dict[str, Any]:
    """The row as UserRead's fields, in order (a versioned row's version is left out)."""
    return dict(zip(USER_FIELDS, row[: len(USER_FIELDS)], strict=True))


USER_SORTS: dict[str, SortKey] = {
    "id": SortKey((User.id,), descending=False),
    "-id": SortKey((User.id,), descending=True),
    "created_at": SortKey((User.created_at, User.id), descending=False),
    "-created_at": SortKey((User.created_at, User.id), descending=True),
    "username": SortKey((User.username,), descending=False, ignore_case=True),
    "-username": SortKey((User.username,), descending=True, ignore_case=True),
}


# MariaDB names the index last: "Duplicate entry 'a@b' for key 'uq_...'" (the entry, which a
# user chose, may itself spell an index's name, so only the key is read).
_MYSQL_DUPLICATE_KEY = re.compile(r"for key '(?:[^'.]*\.)?([^']*)'\W*$")


def _conflict(error: IntegrityError) -> ConflictError | None:
    orig = error.orig
    diag = getattr(orig, "diag", None)
    duplicate_key = _MYSQL_DUPLICATE_KEY.search(str(orig))
    names = (
        [duplicate_key.group(1)]
        if duplicate_key
        else [getattr(diag, "constraint_name", None) or "", str(orig)]
    )
    for index, field in _UNIQUE_INDEX_FIELDS.items():
        if any(index in name for name in names):
            return ConflictError(field)
    # SQLite names an expression index only by name; older builds say "user_account.username".
    for field in ("username", "email"):
        if f"user_account.{field}" in str(orig):
            return ConflictError(field)
    return None


@contextmanager
def unique_violations_as_conflicts() -> Iterator[None]:
    try:
        yield
    except IntegrityError as error:
        conflict = _conflict(error)
        if conflict is None:
            raise
        raise conflict from None


# The fields an event records (a password hash never: its change is an event of its own).
_AUDITED = ("username", "email", "active")
# The audited columns only: the rest (two datetimes to parse on SQLite) no event reads.
_AUDITED_FOR_UPDATE = (
    select(*(_users.c[field] for field in _AUDITED))
    .where(_users.c.id == bindparam("user_id"))
    .with_for_update()
)

# MariaDB's (no UPDATE ... RETURNING): the whole row before, locked, with the database's
# clock, which the update then writes, so the row after is the row before with its changes
# and needs no read back (with engines._roll_back_unless_committed, a PATCH with events
# +21.1% to +11.6% of instructions against without: bench/events.py --backend mysql
# --instructions 100).
_VERSIONED_FOR_UPDATE = (
    select(*VERSIONED_COLUMNS, utcnow().label("now"))
    .where(_users.c.id == bindparam("user_id"))
    .with_for_update()
)
_versioned_row = result_tuple([column.name for column in VERSIONED_COLUMNS])

# Built once: the hottest statements skip constructing themselves and their cache keys.
_INSERT_USER = insert(_users).returning(*VERSIONED_COLUMNS)
_USER_BY_ID = select(*VERSIONED_COLUMNS).where(_users.c.id == bindparam("user_id"))


def _create_with_event() -> Select[Any]:
    written = (
        insert(_users)
        .values(username=bindparam("username"), email=bindparam("email"))
        .returning(*VERSIONED_COLUMNS)
        .cte("written")
    )
    changes = events.pairs({f: (null(), written.c[f]) for f in _AUDITED}, only_changed=False)
    return events.with_events(
        written, events.event_rows(written, "user.created", ("user", written.c.id), changes)
    )


_INSERT_USER_WITH_EVENT = _create_with_event()


def create_user(data: UserCreate) -> VersionedUserRow:
    """Add a user and its event; a taken username or email (any case) is a ConflictError."""
    fields = {"username": data.username, "email": data.email}
    with unique_violations_as_conflicts():
        if events.RECORDING and events.in_one_statement():
            one = db.session.execute(_INSERT_USER_WITH_EVENT, {**fields, **events.event_params()})
            return one.one()
        row: VersionedUserRow = db.session.execute(_INSERT_USER, fields).one()
    events.record("user.created", "user", row.id, events.created(row._mapping, _AUDITED))
    return row


def get_user(user_id: int) -> VersionedUserRow:
    """Return the user's columns or raise NotFoundError."""
    user = db.session.execute(_USER_BY_ID, {"user_id": user_id}).one_or_none()
    if user is None:
        raise NotFoundError(f"User {user_id} does not exist.")
    return user


def _at(user_id: int, versions: Versions) -> ColumnElement[bool]:
    return at_versions(_users.c.id == user_id, versions, _users.c.version)


def update_user(
    user_id: int, data: UserUpdate | MeUpdate, versions: Versions = None
) -> VersionedUserRow:
    """Change the given fields in one statement, if the user is at one of ``versions`` (None:
    any); updated_at and the version always move."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if events.RECORDING and events.in_one_statement():
        # Built once per set of fields (the If-Match variant each time): the statement is
        # large, and building it and its cache key took ~1,500 us of a PATCH's CPU.
        one = (
            _update_with_events_of(tuple(changes))
            if versions is None
            else _update_with_events(tuple(changes), _at(user_id, versions))
        )
        params = {f"new_{field}": value for field, value in changes.items()}
        with unique_violations_as_conflicts():
            user = db.session.execute(
                one, {"user_id": user_id, **params, **events.event_params()}
            ).one_or_none()
        if user is None:
            raise missing_or_changed("user", _users.c.id, user_id)
        return user
    if events.RECORDING and not db.session.get_bind().dialect.update_returning:
        return _update_from_row_before(user_id, changes, versions)
    stmt = (
        update(_users)
        .where(_at(user_id, versions))
        .values(**changes, updated_at=utcnow(), version=_users.c.version + 1)
    )
    user = None
    # The values before, for the event, locked until the commit (PostgreSQL, MariaDB; SQLite
    # under write_unit()'s BEGIN IMMEDIATE, though in a plain transaction() this read may
    # precede the write lock, which its driver takes at the UPDATE).
    before = (
        events.row_before(_AUDITED_FOR_UPDATE, {"user_id": user_id}) if events.RECORDING else None
    )
    with unique_violations_as_conflicts():
        if db.session.get_bind().dialect.update_returning:
            user = db.session.execute(stmt.returning(*VERSIONED_COLUMNS)).one_or_none()
        # MariaDB has no UPDATE ... RETURNING: the row is read back by a second statement,
        # which under autocommit may see a later write (the If-Match check stays the update's).
        elif db.session.execute(stmt).rowcount:  # type: ignore[attr-defined]
            user = db.session.execute(_USER_BY_ID, {"user_id": user_id}).one()
    if user is None:
        raise missing_or_changed("user", _users.c.id, user_id)
    if before is not None:
        _record_update(before, user)
    return user


def _update_from_row_before(
    user_id: int, changes: dict[str, Any], versions: Versions
) -> VersionedUserRow:
    # MariaDB with events: the row before (locked until the commit, as the update's own lock
    # would be) and the update, where reading the audited columns before and the row back
    # after were two statements; the If-Match check stays the update's.
    before = events.row_before(_VERSIONED_FOR_UPDATE, {"user_id": user_id})
    if before is None:
        raise missing_or_changed("user", _users.c.id, user_id)
    now = before["now"]
    stmt = (
        update(_users)
        .where(_at(user_id, versions))
        .values(**changes, updated_at=now, version=_users.c.version + 1)
    )
    with unique_violations_as_conflicts():
        if not db.session.execute(stmt).rowcount:  # type: ignore[attr-defined]
            raise missing_or_changed("user", _users.c.id, user_id)
    after = {**before, **changes, "updated_at": now, "version": before["version"] + 1}
    user: VersionedUserRow = _versioned_row([after[column.name] for column in VERSIONED_COLUMNS])
    _record_update(before, user)
    return user


@functools.cache
def _update_with_events_of(fields: tuple[str, ...]) -> Select[Any]:
    return _update_with_events(fields, _users.c.id == bindparam("user_id"))


def _update_with_events(fields: tuple[str, ...], where: ColumnElement[bool]) -> Select[Any]:
    # The row before, locked (so it is the latest, not the statement's snapshot), then the
    # update returning it beside the new one, then the events: as _record_update says.
    user_id: BindParameter[int] = bindparam("user_id")
    old = select(*VERSIONED_COLUMNS).where(_users.c.id == user_id).with_for_update().cte("old")
    new_values: dict[str, Any] = {field: bindparam(f"new_{field}") for field in fields}
    stmt = (
        update(_users)
        .where(where)
        .values(**new_values, updated_at=utcnow(), version=_users.c.version + 1)
    )
    befores = [old.c[f].label(f"before_{f}") for f in _AUDITED]
    written = (
        stmt.where(_users.c.id == old.c.id).returning(*VERSIONED_COLUMNS, *befores).cte("written")
    )
    moved = events.pairs(
        {f: (written.c[f"before_{f}"], written.c[f]) for f in ("username", "email")},
        only_changed=True,
    )
    before_active, active = written.c.before_active, written.c.active
    active_moved = before_active.is_distinct_from(active)
    updated = events.event_rows(
        written,
        "user.updated",
        ("user", written.c.id),
        moved,
        or_(moved != cast(literal("{}"), JSONB), ~active_moved),
    )
    verb = case((active, literal("user.reactivated")), else_=literal("user.deactivated"))
    toggled = events.event_rows(
        written,
        verb,
        ("user", written.c.id),
        events.pairs({"active": (before_active, active)}, only_changed=False),
        active_moved,
    )
    returned = events.with_events(written, updated, toggled)
    return returned.with_only_columns(*(written.c[c.name] for c in VERSIONED_COLUMNS))


def _record_update(before: events.Fields, after: VersionedUserRow) -> None:
    # A change of active is its own event (deactivated, reactivated); the rest is "updated",
    # recorded also when nothing moved (the write happened: its version moved).
    changes = events.diff(before, after._mapping, _AUDITED)
    active = changes.pop("active", None)
    if changes or active is None:
        events.record("user.updated", "user", after.id, changes)
    if active is not None:
        verb = "user.reactivated" if after.active else "user.deactivated"
        events.record(verb, "user", after.id, {"active": active})


def delete_user(user_id: int, versions: Versions = None) -> None:
    """Delete the user (the database cascades to their posts) if at one of ``versions``."""
    stmt = delete(_users).where(_at(user_id, versions))
    if not events.RECORDING:
        if db.session.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
            raise missing_or_changed("user", _users.c.id, user_id)
        return
    if events.in_one_statement():
        written = stmt.returning(*USER_COLUMNS).cte("written")
        changes = events.pairs({f: (written.c[f], null()) for f in _AUDITED}, only_changed=False)
        rows = events.event_rows(written, "user.deleted", ("user", written.c.id), changes)
        one = events.with_events(written, rows)
        if db.session.execute(one, events.event_params()).one_or_none() is None:
            raise missing_or_changed("user", _users.c.id, user_id)
        return
    # The deleted values come back with the delete (RETURNING: every backend here has it
    # for DELETE, MariaDB since 10.0), so the event costs no read.
    gone = db.session.execute(stmt.returning(*USER_COLUMNS)).one_or_none()
    if gone is None:
        raise missing_or_changed("user", _users.c.id, user_id)
    events.record("user.deleted", "user", user_id, events.deleted(gone._mapping, _AUDITED))


def list_users(query: UserListQuery) -> tuple[list[UserRow], str | None]:
    """Return one page of users and the cursor of the next."""
    key = USER_SORTS[query.sort]
    stmt = select(*USER_COLUMNS)
    if query.username is not None:
        stmt = stmt.where(folded(User.username) == folded(query.username))
    if query.email is not None:
        stmt = stmt.where(folded(User.email) == folded(query.email))
    if query.q is not None:
        stmt = stmt.where(
            or_(folded_match(User.username, query.q), folded_match(User.email, query.q))
        )
        # The side table, as one IN for both columns: two, under the OR, would be probed
        # for every user on MariaDB (app/db/user_search.py).
        dialect = db.engine.dialect.name
        if user_search.asks(dialect, query.q) and user_search.ready(db.engine):
            common = user_search.common(db.engine)
            if not any((column, query.q.lower()) in common for column in user_search.COLUMNS):
                stmt = stmt.where(candidate_ids(_users.c.id, user_search.COLUMNS, query.q, dialect))
    stmt = paginate(stmt, key, query.sort, query.cursor, query.limit)
    rows = list(db.session.execute(stmt))
    return rows[: query.limit], next_cursor(rows, key, query.sort, query.limit)


def password_hash_of(user_id: int) -> str | None:
    """The user's stored password hash (None: no password), or raise NotFoundError."""
    found = db.session.execute(
        select(_users.c.password_hash).where(_users.c.id == user_id)
    ).one_or_none()
    if found is None:
        raise NotFoundError(f"User {user_id} does not exist.")
    return found.password_hash  # type: ignore[no-any-return]


def set_password_hash(user_id: int, password_hash: str) -> None:
    """Store a new password hash, or raise NotFoundError; the representation does not
    change (nor its version)."""
    result = db.session.execute(
        update(_users).where(_users.c.id == user_id).values(password_hash=password_hash)
    )
    # A new hash always differs from the stored one (a new salt), so even a backend that
    # counts changed rows rather than matched ones counts this one.
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(f"User {user_id} does not exist.")
    # Only that it changed: never a hash, old or new.
    events.record("user.password_changed", "user", user_id)
