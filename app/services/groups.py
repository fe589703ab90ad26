"""Groups and their members: the scopes a signed-in user's access token carries.

A member's scopes are the union of their groups', computed when an access token is looked up
and cached with it (services/sessions.py). Every change that can move them (a member added or
removed, a group's scopes changed, a group deleted) forgets the cached sessions of each user
it touches, here at once and in every process at commit (``user:<id>`` on the revocation
channel, which drops the cache without revoking anything). Services flush, never commit.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.config import current_settings
from app.db.session import db
from app.db.types import folded, insert_for, utcnow
from app.errors import ConflictError, NotFoundError
from app.models import Group, GroupMember, User
from app.schemas.groups import GroupCreate, GroupListQuery, GroupUpdate, MemberListQuery
from app.schemas.scopes import ALL_SCOPES
from app.schemas.users import UserCreate
from app.services import events, sessions, users
from app.services.pagination import SortKey, next_cursor, paginate
from app.services.users import USER_COLUMNS, UserRow, VersionedUserRow

_groups = cast(Table, Group.__table__)
_members = cast(Table, GroupMember.__table__)
_users = cast(Table, User.__table__)
GROUP_COLUMNS = (
    _groups.c.id,
    _groups.c.name,
    _groups.c.scopes,
    _groups.c.created_at,
    _groups.c.updated_at,
)
GroupRow = Row[int, str, list[str], datetime, datetime]
GROUP_FIELDS = tuple(column.name for column in GROUP_COLUMNS)
_AUDITED = ("name", "scopes")
GROUP_SORT = SortKey((Group.id,), descending=False)
MEMBER_SORT = SortKey((User.id,), descending=False)


def ordered(scopes: Iterable[str]) -> list[str]:
    """The known scopes among ``scopes``, once each, in ALL_SCOPES' order."""
    given = set(scopes)
    return [scope for scope in ALL_SCOPES if scope in given]


def group_item(row: GroupRow) -> dict[str, Any]:
    """The row as GroupRead's fields, in order."""
    return dict(zip(GROUP_FIELDS, row, strict=True))


def name_taken(error: IntegrityError) -> ConflictError:
    # user_group's one unique index besides its primary key is the folded name.
    del error
    return ConflictError("name")


def _get(group_id: int) -> GroupRow:
    row = db.session.execute(select(*GROUP_COLUMNS).where(_groups.c.id == group_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"Group {group_id} does not exist.")
    return row


def get_group(group_id: int) -> GroupRow:
    """Return the group or raise NotFoundError."""
    return _get(group_id)


def create_group(data: GroupCreate) -> GroupRow:
    """Add a group; a name taken in any letter case is a ConflictError."""
    stmt = insert(_groups).values(name=data.name, scopes=ordered(data.scopes))
    try:
        row: GroupRow = db.session.execute(stmt.returning(*GROUP_COLUMNS)).one()
    except IntegrityError as error:
        raise name_taken(error) from None
    events.record("group.created", "group", row.id, events.created(row._mapping, _AUDITED))
    return row


def _announce_members(group_id: int) -> None:
    member_ids = db.session.execute(
        select(_members.c.user_id).where(_members.c.group_id == group_id)
    ).scalars()
    for user_id in member_ids.all():
        sessions.announce_revocation(f"user:{user_id}")


def update_group(group_id: int, data: GroupUpdate) -> GroupRow:
    """Change the given fields; a change of scopes reaches every member's next request."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "scopes" in changes:
        changes["scopes"] = ordered(changes["scopes"])
    stmt = (
        update(_groups)
        .where(_groups.c.id == group_id)
        .values(**changes, updated_at=utcnow(), version=_groups.c.version + 1)
    )
    # The values before, for the event, locked until the commit (as users.update_user).
    before = db.session.execute(
        select(*GROUP_COLUMNS).where(_groups.c.id == group_id).with_for_update()
    ).one_or_none()
    try:
        matched = db.session.execute(stmt).rowcount  # type: ignore[attr-defined]
    except IntegrityError as error:
        raise name_taken(error) from None
    if not matched:
        raise NotFoundError(f"Group {group_id} does not exist.")
    if "scopes" in changes:
        _announce_members(group_id)
    after = _get(group_id)
    if before is not None:
        moved = events.diff(before._mapping, after._mapping, _AUDITED)
        events.record("group.updated", "group", group_id, moved)
    return after


def delete_group(group_id: int) -> None:
    """Delete the group (its memberships cascade); its members lose its scopes at once."""
    _announce_members(group_id)
    stmt = delete(_groups).where(_groups.c.id == group_id).returning(*GROUP_COLUMNS)
    gone = db.session.execute(stmt).one_or_none()
    if gone is None:
        raise NotFoundError(f"Group {group_id} does not exist.")
    events.record("group.deleted", "group", group_id, events.deleted(gone._mapping, _AUDITED))


def list_groups(query: GroupListQuery) -> tuple[list[GroupRow], str | None]:
    """Return one page of groups by id and the cursor of the next."""
    stmt = paginate(select(*GROUP_COLUMNS), GROUP_SORT, "id", query.cursor, query.limit)
    rows = list(db.session.execute(stmt))
    return rows[: query.limit], next_cursor(rows, GROUP_SORT, "id", query.limit)


def list_members(group_id: int, query: MemberListQuery) -> tuple[list[UserRow], str | None]:
    """Return one page of the group's members (users by id) and the cursor of the next."""
    _get(group_id)
    stmt = select(*USER_COLUMNS).join(_members, _members.c.user_id == _users.c.id)
    stmt = stmt.where(_members.c.group_id == group_id)
    stmt = paginate(stmt, MEMBER_SORT, "id", query.cursor, query.limit)
    rows = list(db.session.execute(stmt))
    return rows[: query.limit], next_cursor(rows, MEMBER_SORT, "id", query.limit)


def _require_user(user_id: int) -> None:
    if db.session.execute(select(_users.c.id).where(_users.c.id == user_id)).first() is None:
        raise NotFoundError(f"User {user_id} does not exist.")


def _moved(group_id: int) -> None:
    # Its members changed: SCIM's meta.version and lastModified say so.
    db.session.execute(
        update(_groups)
        .where(_groups.c.id == group_id)
        .values(updated_at=utcnow(), version=_groups.c.version + 1)
    )


def add_member(group_id: int, user_id: int) -> None:
    """Make the user a member (already one: nothing changes); their next request has the
    group's scopes."""
    _get(group_id)
    _require_user(user_id)
    backend = current_settings().backend
    stmt = insert_for(backend, _members, skip_conflicts=True)
    try:
        # RETURNING, not the row count (SQLite's counts a skipped row): no row, no change.
        inserted = stmt.values(group_id=group_id, user_id=user_id).returning(_members.c.user_id)
        added = db.session.execute(inserted).first() is not None
    except IntegrityError:
        # The group or the user was deleted since it was read.
        raise NotFoundError(f"Group {group_id} or user {user_id} does not exist.") from None
    if added:
        _moved(group_id)
    sessions.announce_revocation(f"user:{user_id}")
    if added:  # already a member: nothing changed, nothing to record
        events.record("group.member_added", "group", group_id, {"user_id": [None, user_id]})


def remove_member(group_id: int, user_id: int) -> None:
    """End the membership (none: nothing changes, unless the group does not exist); the
    user's next request no longer has the group's scopes."""
    stmt = delete(_members).where(_members.c.group_id == group_id, _members.c.user_id == user_id)
    removed = db.session.execute(stmt).rowcount  # type: ignore[attr-defined]
    if not removed:
        _get(group_id)
    else:
        _moved(group_id)
    sessions.announce_revocation(f"user:{user_id}")
    if removed:
        events.record("group.member_removed", "group", group_id, {"user_id": [user_id, None]})


ADMINS = "admins"


def _admins_group() -> tuple[int, bool]:
    found = select(_groups.c.id).where(folded(_groups.c.name) == folded(ADMINS))
    group_id = db.session.execute(found).scalar_one_or_none()
    if group_id is not None:
        return int(group_id), False
    try:
        with db.session.begin_nested():
            stmt = insert(_groups).values(name=ADMINS, scopes=list(ALL_SCOPES))
            made = db.session.execute(stmt.returning(*GROUP_COLUMNS)).one()
            events.record(
                "group.created", "group", made.id, events.created(made._mapping, _AUDITED)
            )
            return int(made.id), True
    except IntegrityError:
        # Another writer made it meanwhile: the unique index said so.
        return int(db.session.execute(found).scalar_one()), False


def create_admin(data: UserCreate, password_hash: str) -> tuple[VersionedUserRow, int, bool]:
    """Add a user with this password hash to the admins group, made (with every scope) if
    absent; return the user, the group's id and whether it was made."""
    user = users.create_user(data)
    db.session.execute(
        update(_users).where(_users.c.id == user.id).values(password_hash=password_hash)
    )
    group_id, made = _admins_group()
    db.session.execute(insert(_members).values(group_id=group_id, user_id=user.id))
    events.record("group.member_added", "group", group_id, {"user_id": [None, user.id]})
    return user, group_id, made
