"""HTTP views of groups and their members, managed with the users:admin scope.

Every write runs in a ``transaction()``: it announces, on the revocation channel at commit,
each member whose scopes it changes (services/groups.py).
"""

from flask import url_for
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import item_response, operation_id_for, page_response, problems
from app.db.session import autocommit, run_db, transaction
from app.schemas.groups import (
    GroupCreate,
    GroupListQuery,
    GroupPage,
    GroupPath,
    GroupRead,
    GroupUpdate,
    MemberListQuery,
    MemberPath,
)
from app.schemas.users import UserPage
from app.services import groups, users
from app.web.auth import requires
from app.web.bodies import no_body
from app.web.responses import Response

bp = APIBlueprint(
    "groups",
    __name__,
    url_prefix="/groups",
    abp_tags=[Tag(name="groups")],
    operation_id_callback=operation_id_for,
)


@bp.post("", responses={201: GroupRead, **problems(400, 409, 413, 415, 422)})
@requires("users:admin")
async def create_group(body: GroupCreate) -> Response:
    """Create a group with scopes."""
    async with transaction():
        group = await run_db(groups.create_group, body)
    location = url_for("groups.get_group", group_id=group.id)
    return item_response(groups.group_item(group), 201, {"Location": location})


@bp.get("", responses={200: GroupPage, **problems(400)})
@requires("users:admin")
async def list_groups(query: GroupListQuery) -> Response:
    """List groups by id, one keyset page at a time."""
    async with autocommit():
        rows, cursor = await run_db(groups.list_groups, query)
    return page_response(map(groups.group_item, rows), cursor)


@bp.get("/<id:group_id>", responses={200: GroupRead, **problems(404)})
@requires("users:admin")
async def get_group(path: GroupPath) -> Response:
    """Get one group."""
    async with autocommit():
        group = await run_db(groups.get_group, path.group_id)
    return item_response(groups.group_item(group))


@bp.patch("/<id:group_id>", responses={200: GroupRead, **problems(400, 404, 409, 413, 415, 422)})
@requires("users:admin")
async def update_group(path: GroupPath, body: GroupUpdate) -> Response:
    """Rename a group or change its scopes (every member's next request has the new ones)."""
    async with transaction():
        group = await run_db(groups.update_group, path.group_id, body)
    return item_response(groups.group_item(group))


@bp.delete("/<id:group_id>", responses={204: None, **problems(404)})
@requires("users:admin")
async def delete_group(path: GroupPath) -> Response:
    """Delete a group; its members lose its scopes at once."""
    async with transaction():
        await run_db(groups.delete_group, path.group_id)
    return Response(status=204)


@bp.get("/<id:group_id>/members", responses={200: UserPage, **problems(400, 404)})
@requires("users:admin")
async def list_group_members(path: GroupPath, query: MemberListQuery) -> Response:
    """List a group's members (users by id), one keyset page at a time."""
    async with autocommit():
        rows, cursor = await run_db(groups.list_members, path.group_id, query)
    return page_response(map(users.user_item, rows), cursor)


@bp.put("/<id:group_id>/members/<id:user_id>", responses={204: None, **problems(400, 404)})
@requires("users:admin")
@no_body
async def add_group_member(path: MemberPath) -> Response:
    """Make a user a member of the group (already one: 204 all the same)."""
    async with transaction():
        await run_db(groups.add_member, path.group_id, path.user_id)
    return Response(status=204)


@bp.delete("/<id:group_id>/members/<id:user_id>", responses={204: None, **problems(404)})
@requires("users:admin")
async def remove_group_member(path: MemberPath) -> Response:
    """End a user's membership (not a member: 204 all the same); they lose its scopes at once."""
    async with transaction():
        await run_db(groups.remove_member, path.group_id, path.user_id)
    return Response(status=204)
