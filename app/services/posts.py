"""Rules of the posts resource. Every read loads authors in a fixed number of queries."""

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.db.session import db
from app.db.types import utcnow
from app.errors import NotFoundError, PreconditionFailedError
from app.models import Post, User
from app.schemas.common import Versions
from app.schemas.posts import PostCreate, PostListQuery, PostUpdate, UserPostsQuery
from app.services.pagination import SortKey, next_cursor, paginate

POST_SORTS: dict[str, SortKey] = {
    "id": SortKey((Post.id,), descending=False),
    "-id": SortKey((Post.id,), descending=True),
    "created_at": SortKey((Post.created_at, Post.id), descending=False),
    "-created_at": SortKey((Post.created_at, Post.id), descending=True),
}


def _with_author() -> Select[Post]:
    # Many-to-one: one LEFT OUTER JOIN brings every author with its post, in the same query.
    return select(Post).options(joinedload(Post.author))


def _author(user_id: int) -> User:
    author = db.session.get(User, user_id)
    if author is None:
        raise NotFoundError(f"User {user_id} does not exist.")
    return author


def create_post(user_id: int, data: PostCreate) -> Post:
    """Add a post by the user, or raise NotFoundError if there is no such user."""
    author = _author(user_id)
    post = Post(author=author, title=data.title, body=data.body)
    db.session.add(post)
    try:
        db.session.flush()
    except IntegrityError as error:
        # The only constraint a new post can break: its author was deleted meanwhile.
        raise NotFoundError(f"User {user_id} does not exist.") from error
    return post


def get_post(post_id: int) -> Post:
    """Return the post with its author, or raise NotFoundError."""
    post = db.session.execute(_with_author().where(Post.id == post_id)).scalar_one_or_none()
    if post is None:
        raise NotFoundError(f"Post {post_id} does not exist.")
    return post


def _where(post_id: int, versions: Versions) -> ColumnElement[bool]:
    # The If-Match check is part of the write's own WHERE: no read-then-write race. A post's
    # ETag holds its author's version too (its body embeds the author's username).
    match = Post.id == post_id
    if versions is None:
        return match
    author_version = select(User.version).where(User.id == Post.author_id).scalar_subquery()
    allowed = [and_(Post.version == post, author_version == author) for post, author in versions]
    return and_(match, or_(false(), *allowed))


def _missing_or_changed(post_id: int) -> NotFoundError | PreconditionFailedError:
    exists = db.session.execute(select(1).where(Post.id == post_id)).first()
    if exists:
        return PreconditionFailedError("post")
    return NotFoundError(f"Post {post_id} does not exist.")


def update_post(post_id: int, data: PostUpdate, versions: Versions = None) -> Post:
    """Change the given fields, if the post is at one of ``versions`` (None: any); updated_at
    and the version always move."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    stmt = (
        update(Post)
        .where(_where(post_id, versions))
        .values(**changes, updated_at=utcnow(), version=Post.version + 1)
        .execution_options(synchronize_session=False)
    )
    # The row count, not RETURNING, which MariaDB's UPDATE lacks.
    if db.session.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
        raise _missing_or_changed(post_id)
    return db.session.execute(
        _with_author().where(Post.id == post_id).execution_options(populate_existing=True)
    ).scalar_one()


def delete_post(post_id: int, versions: Versions = None) -> None:
    """Delete the post if it is at one of ``versions`` (None: any), or raise."""
    result = db.session.execute(
        delete(Post).where(_where(post_id, versions)).execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise _missing_or_changed(post_id)


def _page(
    stmt: Select[Post], sort: str, cursor: str | None, limit: int
) -> tuple[list[Post], str | None]:
    key = POST_SORTS[sort]
    rows = list(db.session.execute(paginate(stmt, key, sort, cursor, limit)).scalars())
    return rows[:limit], next_cursor(rows, key, sort, limit)


def list_posts(query: PostListQuery) -> tuple[list[Post], str | None]:
    """Return one page of posts with their authors: one query whatever the page size."""
    stmt = _with_author()
    if query.author_id is not None:
        stmt = stmt.where(Post.author_id == query.author_id)
    return _page(stmt, query.sort, query.cursor, query.limit)


def list_user_posts(user_id: int, query: UserPostsQuery) -> tuple[list[Post], str | None]:
    """Return one page of a user's posts, or raise NotFoundError: two queries in all."""
    author = _author(user_id)
    # Every post has this author, already in the identity map: no join, no lazy load.
    stmt = select(Post).where(Post.author_id == user_id)
    posts, cursor = _page(stmt, query.sort, query.cursor, query.limit)
    for post in posts:
        set_committed_value(post, "author", author)
    return posts, cursor
