"""Rules of the posts resource. Services flush, never commit.

Written on the users template (docs/explanation/architecture.md, "A resource"): Core
statements on the model's own table select the representation's columns; a post embeds its
author's username, so its columns come with the author's in one join, and every read is one
query.
"""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Select, Table, bindparam, delete, null, select, update
from sqlalchemy.exc import IntegrityError

from app.db.session import db
from app.db.types import utcnow
from app.errors import NotFoundError
from app.models import Post, User
from app.schemas.common import Versions
from app.schemas.posts import PostCreate, PostListQuery, PostUpdate, UserPostsQuery
from app.services import events
from app.services.pagination import SortKey, next_cursor, paginate
from app.services.versions import at_versions, missing_or_changed

_posts = cast(Table, Post.__table__)
# The fields a post's events record.
_AUDITED = ("author_id", "title", "body")
_users = cast(Table, User.__table__)
# The representation's columns, then the two versions its ETag is made of (a post's body
# embeds its author's username, so the author's version is part of the post's).
POST_COLUMNS = (
    _posts.c.id,
    _posts.c.author_id,
    _users.c.username.label("author_username"),
    _posts.c.title,
    _posts.c.body,
    _posts.c.created_at,
    _posts.c.updated_at,
    _posts.c.version,
    _users.c.version.label("author_version"),
)
PostRow = Row[int, int, str, str, str, datetime, datetime, int, int]

POST_SORTS: dict[str, SortKey] = {
    "id": SortKey((Post.id,), descending=False),
    "-id": SortKey((Post.id,), descending=True),
    "created_at": SortKey((Post.created_at, Post.id), descending=False),
    "-created_at": SortKey((Post.created_at, Post.id), descending=True),
}


def post_item(row: PostRow) -> dict[str, Any]:
    """The row as PostRead's fields, in order, with the author embedded."""
    return {
        "id": row.id,
        "author_id": row.author_id,
        "author": {"id": row.author_id, "username": row.author_username},
        "title": row.title,
        "body": row.body,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _with_author() -> Select[Any]:
    # Many-to-one: one join brings every author with its post, in the same query.
    return select(*POST_COLUMNS).join_from(_posts, _users, _posts.c.author_id == _users.c.id)


# Built once: the hottest statement skips constructing itself and its cache key.
_POST_BY_ID = _with_author().where(_posts.c.id == bindparam("post_id"))
_AUTHOR = select(_users.c.id).where(_users.c.id == bindparam("user_id"))


def _require_author(user_id: int) -> None:
    if db.session.execute(_AUTHOR, {"user_id": user_id}).first() is None:
        raise NotFoundError(f"User {user_id} does not exist.")


def _read(post_id: int) -> PostRow | None:
    row: PostRow | None = db.session.execute(_POST_BY_ID, {"post_id": post_id}).one_or_none()
    return row


def create_post(user_id: int, data: PostCreate) -> PostRow:
    """Add a post by the user, or raise NotFoundError if there is no such user."""
    # No read of the author first: the foreign key is the check, and the one a concurrent
    # delete of the author cannot slip past.
    try:
        post_id = db.session.execute(
            _posts.insert().returning(_posts.c.id),
            {"author_id": user_id, "title": data.title, "body": data.body},
        ).scalar_one()
    except IntegrityError as error:
        # The only constraint a new post can break: its author does not exist.
        raise NotFoundError(f"User {user_id} does not exist.") from error
    row = _read(post_id)
    if row is None:  # deleted with its author between the two statements
        raise NotFoundError(f"User {user_id} does not exist.")
    events.record("post.created", "post", post_id, events.created(row._mapping, _AUDITED))
    return row


def get_post(post_id: int) -> PostRow:
    """Return the post with its author, or raise NotFoundError."""
    row = _read(post_id)
    if row is None:
        raise NotFoundError(f"Post {post_id} does not exist.")
    return row


def _at(post_id: int, versions: Versions) -> ColumnElement[bool]:
    author_version = (
        select(_users.c.version).where(_users.c.id == _posts.c.author_id).scalar_subquery()
    )
    return at_versions(_posts.c.id == post_id, versions, _posts.c.version, author_version)


def update_post(post_id: int, data: PostUpdate, versions: Versions = None) -> PostRow:
    """Change the given fields, if the post is at one of ``versions`` (None: any); updated_at
    and the version always move."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    stmt = (
        update(_posts)
        .where(_at(post_id, versions))
        .values(**changes, updated_at=utcnow(), version=_posts.c.version + 1)
    )
    # The values before, for the event, locked until the commit (as users.update_user).
    before = (
        db.session.execute(
            select(_posts.c.title, _posts.c.body).where(_posts.c.id == post_id).with_for_update()
        ).one_or_none()
        if events.RECORDING
        else None
    )
    # The row count, not RETURNING, which MariaDB's UPDATE lacks; the read back is in the
    # same transaction (the view's), so it sees this write and no later one.
    row = _read(post_id) if db.session.execute(stmt).rowcount else None  # type: ignore[attr-defined]
    if row is None:
        raise missing_or_changed("post", _posts.c.id, post_id)
    if before is not None:
        changes = events.diff(before._mapping, row._mapping, ("title", "body"))
        events.record("post.updated", "post", post_id, changes)
    return row


def delete_post(post_id: int, versions: Versions = None) -> None:
    """Delete the post if it is at one of ``versions`` (None: any), or raise."""
    returned = (_posts.c.id, *(_posts.c[f] for f in _AUDITED))
    stmt = delete(_posts).where(_at(post_id, versions)).returning(*returned)
    if events.in_one_statement():
        # With its event in the same statement: autocommit() commits both in one round trip.
        written = stmt.cte("written")
        changes = events.pairs({f: (written.c[f], null()) for f in _AUDITED}, only_changed=False)
        rows = events.event_rows(written, "post.deleted", ("post", written.c.id), changes)
        if db.session.execute(events.with_events(written, rows), events.event_params()).first():
            return
        raise missing_or_changed("post", _posts.c.id, post_id)
    gone = db.session.execute(stmt).one_or_none()
    if gone is None:
        raise missing_or_changed("post", _posts.c.id, post_id)
    events.record("post.deleted", "post", post_id, events.deleted(gone._mapping, _AUDITED))


def _page(
    stmt: Select[Any], sort: str, cursor: str | None, limit: int
) -> tuple[list[PostRow], str | None]:
    key = POST_SORTS[sort]
    rows: list[PostRow] = list(db.session.execute(paginate(stmt, key, sort, cursor, limit)))
    return rows[:limit], next_cursor(rows, key, sort, limit)


def list_posts(query: PostListQuery) -> tuple[list[PostRow], str | None]:
    """Return one page of posts with their authors: one query whatever the page size."""
    stmt = _with_author()
    if query.author_id is not None:
        stmt = stmt.where(_posts.c.author_id == query.author_id)
    return _page(stmt, query.sort, query.cursor, query.limit)


def list_user_posts(user_id: int, query: UserPostsQuery) -> tuple[list[PostRow], str | None]:
    """Return one page of a user's posts, or raise NotFoundError: two queries in all."""
    _require_author(user_id)
    stmt = _with_author().where(_posts.c.author_id == user_id)
    return _page(stmt, query.sort, query.cursor, query.limit)
