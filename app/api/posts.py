"""HTTP views of the posts resource: thin, async, one DB call each.

A create or an update reads the post back with its author, so it is two statements: it runs
in a ``transaction()``, committed when the block ends; reads and the one-statement delete
run in ``autocommit()`` (docs/explanation/architecture.md, "A resource").
"""

from flask import url_for
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import item_response, operation_id_for, page_response, problems
from app.api.conditional import (
    WriteCondition,
    etag,
    not_modified,
    unit_for,
    write_condition,
)
from app.api.idempotency import idempotent
from app.db.session import autocommit, run_db, transaction
from app.errors import ForbiddenError
from app.schemas.posts import (
    PostCreate,
    PostListQuery,
    PostPage,
    PostPath,
    PostRead,
    PostUpdate,
    UserPostsQuery,
)
from app.schemas.users import UserPath
from app.services import posts
from app.web.auth import require_owner, requires, restricted_to
from app.web.responses import Response

bp = APIBlueprint(
    "posts", __name__, abp_tags=[Tag(name="posts")], operation_id_callback=operation_id_for
)


def _etag(post: posts.PostRow) -> str:
    return etag(post.version, post.author_version)


def _post_response(
    post: posts.PostRow, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    tagged = {"ETag": _etag(post), **(headers or {})}
    return item_response(posts.post_item(post), status, tagged)


@bp.post(
    "/users/<id:user_id>/posts",
    responses={201: PostRead, **problems(400, 403, 404, 409, 413, 415, 422)},
)
@requires("posts:write")
@idempotent
async def create_post(path: UserPath, body: PostCreate) -> Response:
    """Create a post by this user."""
    require_owner(path.user_id)
    async with transaction():
        post = await run_db(posts.create_post, path.user_id, body)
    return _post_response(post, 201, {"Location": url_for("posts.get_post", post_id=post.id)})


@bp.get("/users/<id:user_id>/posts", responses={200: PostPage, **problems(400, 404)})
@requires("posts:read")
async def list_user_posts(path: UserPath, query: UserPostsQuery) -> Response:
    """List one user's posts, one keyset page at a time."""
    async with autocommit():
        items, cursor = await run_db(posts.list_user_posts, path.user_id, query)
    return page_response(map(posts.post_item, items), cursor)


@bp.get("/posts", responses={200: PostPage, **problems(400)})
@requires("posts:read")
async def list_posts(query: PostListQuery) -> Response:
    """List posts with their authors, one keyset page at a time."""
    async with autocommit():
        items, cursor = await run_db(posts.list_posts, query)
    return page_response(map(posts.post_item, items), cursor)


@bp.get("/posts/<id:post_id>", responses={200: PostRead, **problems(404)})
@requires("posts:read")
async def get_post(path: PostPath) -> Response:
    """Get one post with its author (304 where If-None-Match names its ETag)."""
    async with autocommit():
        post = await run_db(posts.get_post, path.post_id)
    return not_modified("post", post.version, post.author_version) or _post_response(post)


def _current(post_id: int) -> tuple[int, int]:
    post = posts.get_post(post_id)
    return post.version, post.author_version


def _own(post_id: int, owner: int | None) -> None:
    # A post's author never changes, so this read cannot go stale before the write.
    if owner is not None and posts.get_post(post_id).author_id != owner:
        raise ForbiddenError([], "You may change only your own user and your own posts.")


def _update_post(
    post_id: int, body: PostUpdate, condition: WriteCondition, owner: int | None
) -> posts.PostRow:
    _own(post_id, owner)
    return posts.update_post(post_id, body, condition.versions(lambda: _current(post_id)))


def _delete_post(post_id: int, condition: WriteCondition, owner: int | None) -> None:
    _own(post_id, owner)
    posts.delete_post(post_id, condition.versions(lambda: _current(post_id)))


@bp.patch(
    "/posts/<id:post_id>", responses={200: PostRead, **problems(400, 403, 404, 412, 413, 415, 422)}
)
@requires("posts:write")
async def update_post(path: PostPath, body: PostUpdate) -> Response:
    """Change some fields of a post; omitted fields stay as they are."""
    condition = write_condition(2)
    async with transaction():
        post = await run_db(_update_post, path.post_id, body, condition, restricted_to())
    return _post_response(post)


@bp.put(
    "/posts/<id:post_id>", responses={200: PostRead, **problems(400, 403, 404, 412, 413, 415, 422)}
)
@requires("posts:write")
async def replace_post(path: PostPath, body: PostUpdate) -> Response:
    """Change a post; like PATCH (partial), as for users."""
    condition = write_condition(2)
    async with transaction():
        post = await run_db(_update_post, path.post_id, body, condition, restricted_to())
    return _post_response(post)


@bp.delete("/posts/<id:post_id>", responses={204: None, **problems(403, 404, 412)})
@requires("posts:write")
async def delete_post(path: PostPath) -> Response:
    """Delete a post."""
    condition = write_condition(2)
    async with unit_for(condition):
        await run_db(_delete_post, path.post_id, condition, restricted_to())
    return Response(status=204)
