"""The rows SCIM reads and writes: the same users and groups as /users and /groups.

SCIM's filters become SQL here (FilterVisitor over scim2-models' parsed and validated tree),
never a filter in Python over fetched rows. Services flush, never commit.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from scim2_models import InvalidValueException
from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from app.config import current_settings
from app.db.session import db
from app.db.types import folded, insert_for, utcnow
from app.errors import NotFoundError
from app.models import Group, GroupMember, User
from app.schemas.common import Versions
from app.services import events, groups, sessions
from app.services.scim_filters import Attribute
from app.services.users import _AUDITED as USER_AUDITED
from app.services.users import (
    VERSIONED_COLUMNS,
    _record_update,
    unique_violations_as_conflicts,
)
from app.services.versions import at_versions, missing_or_changed

_users = cast(Table, User.__table__)
_groups = cast(Table, Group.__table__)
_members = cast(Table, GroupMember.__table__)

# A user as /users/{id} has it, with its version, and SCIM's own attributes after.
SCIM_USER_COLUMNS = (
    *VERSIONED_COLUMNS,
    _users.c.external_id,
    _users.c.email_type,
    _users.c.display_name,
    _users.c.given_name,
    _users.c.family_name,
)
SCIM_GROUP_COLUMNS = (
    _groups.c.id,
    _groups.c.name,
    _groups.c.created_at,
    _groups.c.updated_at,
    _groups.c.version,
    _groups.c.external_id,
)
UserRow = Row[*tuple[Any, ...]]
GroupRow = Row[*tuple[Any, ...]]

Sorting = tuple[Attribute, bool] | None  # the attribute, and whether it descends


def _ordered(stmt: Any, sort: Sorting, id_column: ColumnElement[Any]) -> Any:
    if sort is None:
        return stmt.order_by(id_column)
    attribute, descending = sort
    key = attribute.column
    if key.type.python_type is str and not attribute.case_exact:
        key = folded(key)
    # NULLs sort last either way (RFC 7644 3.4.2.3), and the id breaks ties.
    nulls = key.is_(None)
    key = key.desc() if descending else key.asc()
    return stmt.order_by(nulls, key, id_column)


@dataclass(frozen=True)
class Window:
    """Which rows of the matches a list answers: from an index (``offset``), or after the id
    a cursor names (``after``, RFC 9865: keyset pages in id order), at most ``limit``."""

    offset: int
    limit: int
    after: int | None = None


def search(
    table: str, condition: ColumnElement[bool] | None, sort: Sorting, window: Window
) -> tuple[list[Row[Any]], int]:
    """A page of users or groups matching ``condition`` (one row more than the window's
    limit in cursor mode, which says whether another page follows) and how many match."""
    columns = SCIM_USER_COLUMNS if table == "users" else SCIM_GROUP_COLUMNS
    id_column = _users.c.id if table == "users" else _groups.c.id
    where = condition if condition is not None else true()
    total = db.session.execute(select(func.count()).select_from(columns[0].table).where(where))
    count = int(total.scalar_one())
    if window.limit == 0 or window.offset >= count:
        return [], count
    if window.after is not None:
        stmt = select(*columns).where(where, id_column > window.after).order_by(id_column)
        return list(db.session.execute(stmt.limit(window.limit + 1))), count
    stmt = _ordered(select(*columns).where(where), sort, id_column)
    return list(db.session.execute(stmt.offset(window.offset).limit(window.limit))), count


def get_user(user_id: int) -> UserRow:
    """The user's SCIM columns, or NotFoundError."""
    row = db.session.execute(select(*SCIM_USER_COLUMNS).where(_users.c.id == user_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"User {user_id} does not exist.")
    return row


def create_user(fields: dict[str, Any]) -> UserRow:
    """Insert a user with these columns; a taken username or email is a ConflictError."""
    with unique_violations_as_conflicts():
        stmt = insert(_users).values(**fields).returning(*SCIM_USER_COLUMNS)
        row: UserRow = db.session.execute(stmt).one()
    events.record("user.created", "user", row.id, events.created(row._mapping, USER_AUDITED))
    if "password_hash" in fields:
        events.record("user.password_changed", "user", row.id)
    return row


def replace_user(user_id: int, fields: dict[str, Any], versions: Versions) -> UserRow:
    """Set these columns if the user is at one of ``versions``; deactivating revokes the
    user's sessions in the same transaction."""
    stmt = (
        update(_users)
        .where(at_versions(_users.c.id == user_id, versions, _users.c.version))
        .values(**fields, updated_at=utcnow(), version=_users.c.version + 1)
    )
    # The values before, for the events, locked until the commit (as users.update_user).
    before = db.session.execute(
        select(*SCIM_USER_COLUMNS).where(_users.c.id == user_id).with_for_update()
    ).one_or_none()
    with unique_violations_as_conflicts():
        matched = db.session.execute(stmt).rowcount  # type: ignore[attr-defined]
    if not matched or before is None:
        raise missing_or_changed("user", _users.c.id, user_id)
    if fields.get("active") is False:
        sessions.revoke_user_sessions(user_id)
    after = get_user(user_id)
    _record_update(before._mapping, after)  # the same named columns, and more
    if "password_hash" in fields:
        events.record("user.password_changed", "user", user_id)
    return after


def get_group(group_id: int) -> GroupRow:
    """The group's SCIM columns, or NotFoundError."""
    row = db.session.execute(
        select(*SCIM_GROUP_COLUMNS).where(_groups.c.id == group_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Group {group_id} does not exist.")
    return row


def members_of(group_ids: Iterable[int]) -> dict[int, list[int]]:
    """Each group's members' user ids, in order."""
    found: dict[int, list[int]] = {group_id: [] for group_id in group_ids}
    if not found:
        return found
    stmt = (
        select(_members.c.group_id, _members.c.user_id)
        .where(_members.c.group_id.in_(list(found)))
        .order_by(_members.c.group_id, _members.c.user_id)
    )
    for group_id, user_id in db.session.execute(stmt):
        found[group_id].append(user_id)
    return found


def create_group(name: str, external_id: str | None) -> GroupRow:
    """Insert a group with no scopes (an admin grants them through /groups)."""
    stmt = insert(_groups).values(name=name, scopes=[], external_id=external_id)
    try:
        group_id = db.session.execute(stmt.returning(_groups.c.id)).scalar_one()
    except IntegrityError as error:
        raise groups.name_taken(error) from None
    made = {"name": name, "scopes": []}
    events.record("group.created", "group", group_id, events.created(made, list(made)))
    return get_group(int(group_id))


def touch_group(group_id: int, versions: Versions, **fields: Any) -> None:
    """Set these columns and move the version (SCIM's meta.version) if at one of ``versions``."""
    stmt = (
        update(_groups)
        .where(at_versions(_groups.c.id == group_id, versions, _groups.c.version))
        .values(**fields, updated_at=utcnow(), version=_groups.c.version + 1)
    )
    before = db.session.execute(
        select(_groups.c.name).where(_groups.c.id == group_id).with_for_update()
    ).one_or_none()
    try:
        matched = db.session.execute(stmt).rowcount  # type: ignore[attr-defined]
    except IntegrityError as error:
        raise groups.name_taken(error) from None
    if not matched or before is None:
        raise missing_or_changed("group", _groups.c.id, group_id)
    if "name" in fields and fields["name"] != before.name:
        events.record("group.updated", "group", group_id, {"name": [before.name, fields["name"]]})


def _existing_users(user_ids: Iterable[int]) -> list[int]:
    """The ids, each checked to name a user: a member that is not one is refused, not lost."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return []
    found = list(db.session.execute(select(_users.c.id).where(_users.c.id.in_(wanted))).scalars())
    missing = sorted(set(wanted) - set(found))
    if missing:
        shown = ", ".join(str(user_id) for user_id in missing[:10])
        raise InvalidValueException(detail=f"members: no user {shown}.")
    return found


def add_members(group_id: int, user_ids: Iterable[int]) -> None:
    """Add these users (members already: left alone; not users: refused) without
    reading the group's other members: a group of 10,000 costs what one of 10 does."""
    present = _existing_users(user_ids)
    if not present:
        return
    stmt = insert_for(current_settings().backend, _members, skip_conflicts=True)
    rows = [{"group_id": group_id, "user_id": user_id} for user_id in present]
    # RETURNING names the rows inserted, not those a member already had (skipped).
    added = db.session.execute(stmt.values(rows).returning(_members.c.user_id)).scalars().all()
    for user_id in added:
        sessions.announce_revocation(f"user:{user_id}")
        events.record("group.member_added", "group", group_id, {"user_id": [None, user_id]})


def remove_members(group_id: int, user_ids: Iterable[int]) -> None:
    """Remove these users from the group (those not in it: left alone)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return
    stmt = delete(_members).where(_members.c.group_id == group_id, _members.c.user_id.in_(wanted))
    gone = set(db.session.execute(stmt.returning(_members.c.user_id)).scalars())
    for user_id in wanted:
        sessions.announce_revocation(f"user:{user_id}")
        if user_id in gone:
            events.record("group.member_removed", "group", group_id, {"user_id": [user_id, None]})


def set_members(group_id: int, user_ids: Iterable[int]) -> None:
    """Make exactly these users the members (PUT)."""
    wanted = set(_existing_users(user_ids))
    now = set(
        db.session.execute(
            select(_members.c.user_id).where(_members.c.group_id == group_id)
        ).scalars()
    )
    remove_members(group_id, now - wanted)
    add_members(group_id, wanted - now)


def delete_group(group_id: int, versions: Versions) -> None:
    """Delete the group if at one of ``versions`` (its members lose its scopes at once)."""
    touch_group(group_id, versions)  # the If-Match check, and the row locked meanwhile
    groups.delete_group(group_id)
