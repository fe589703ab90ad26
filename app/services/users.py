"""Rules of the users resource. Services flush, never commit."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from app.db.session import db
from app.db.types import folded, folded_match, utcnow
from app.errors import ConflictError, NotFoundError
from app.models import User
from app.schemas.common import Versions
from app.schemas.users import MeUpdate, UserCreate, UserListQuery, UserUpdate
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
_users = cast(Table, User.__table__)
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
def _unique_violations_as_conflicts() -> Iterator[None]:
    try:
        yield
    except IntegrityError as error:
        conflict = _conflict(error)
        if conflict is None:
            raise
        raise conflict from None


# Built once: the hottest statements skip constructing themselves and their cache keys.
_INSERT_USER = insert(_users).returning(*VERSIONED_COLUMNS)
_USER_BY_ID = select(*VERSIONED_COLUMNS).where(_users.c.id == bindparam("user_id"))


def create_user(data: UserCreate) -> VersionedUserRow:
    """Add a user in one statement; a taken username or email (any case) is a ConflictError."""
    with _unique_violations_as_conflicts():
        row: VersionedUserRow = db.session.execute(
            _INSERT_USER, {"username": data.username, "email": data.email}
        ).one()
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
    stmt = (
        update(_users)
        .where(_at(user_id, versions))
        .values(**changes, updated_at=utcnow(), version=_users.c.version + 1)
    )
    user: VersionedUserRow | None = None
    with _unique_violations_as_conflicts():
        if db.session.get_bind().dialect.update_returning:
            user = db.session.execute(stmt.returning(*VERSIONED_COLUMNS)).one_or_none()
        # MariaDB has no UPDATE ... RETURNING: the row is read back by a second statement,
        # which under autocommit may see a later write (the If-Match check stays the update's).
        elif db.session.execute(stmt).rowcount:  # type: ignore[attr-defined]
            user = db.session.execute(_USER_BY_ID, {"user_id": user_id}).one()
    if user is None:
        raise missing_or_changed("user", _users.c.id, user_id)
    return user


def delete_user(user_id: int, versions: Versions = None) -> None:
    """Delete the user (the database cascades to their posts) if at one of ``versions``."""
    result = db.session.execute(delete(_users).where(_at(user_id, versions)))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise missing_or_changed("user", _users.c.id, user_id)


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
    """Store a new password hash; the representation does not change (nor its version)."""
    db.session.execute(
        update(_users).where(_users.c.id == user_id).values(password_hash=password_hash)
    )
