"""SCIM Groups: the same groups as /groups; PATCH moves members without reading the others."""

from typing import Any

from scim2_models import Context, Group, GroupMember, PatchOp

from app.api.conditional import etag, not_modified, write_condition
from app.db.session import autocommit, run_db, transaction
from app.schemas.common import Versions
from app.schemas.groups import GroupCreate
from app.scim import resources
from app.scim.views import bp, json_body, not_supported, resource_answer
from app.services import scim
from app.web.auth import requires
from app.web.responses import Response


def group_answer(row: Any, members: list[int] | None, *, created: bool = False) -> Response:
    """The group as SCIM JSON, with its ETag (and Location when created)."""
    return resource_answer(resources.group_resource(row, members), row.version, created=created)


def _checked_name(name: Any) -> str:
    return GroupCreate(name=name, scopes=[]).name


def _create_group(fields: dict[str, Any], ids: list[int] | None) -> tuple[Any, Any]:
    row = scim.create_group(fields["name"], fields["external_id"])
    if ids:
        scim.add_members(row.id, ids)
    return row, scim.members_of([row.id])[row.id]


async def create(body: dict[str, Any]) -> tuple[Any, list[int]]:
    """Provision a group from a SCIM body; its row and members."""
    group = Group.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    fields, ids = resources.group_fields(group)
    fields["name"] = _checked_name(fields["name"])
    async with transaction():
        return await run_db(_create_group, fields, ids)


@bp.post("/Groups")
@requires("scim")
async def create_group() -> Response:
    """Provision a group (no scopes: an admin grants them through /groups)."""
    row, members = await create(json_body())
    return group_answer(row, members, created=True)


def _read_group(group_id: int) -> tuple[Any, Any]:
    row = scim.get_group(group_id)
    return row, scim.members_of([group_id])[group_id]


@bp.get("/Groups/<id:group_id>")
@requires("scim")
async def get_group(group_id: int) -> Response:
    """One group with its members."""
    async with autocommit():
        row, members = await run_db(_read_group, group_id)
    return not_modified("group", row.version) or group_answer(row, members)


def _replace_group(
    group_id: int, fields: dict[str, Any], ids: list[int] | None, versions: Any
) -> tuple[Any, Any]:
    scim.touch_group(group_id, versions, **fields)
    scim.set_members(group_id, ids or [])
    return _read_group(group_id)


async def replace(group_id: int, body: dict[str, Any], versions: Versions) -> tuple[Any, Any]:
    """Replace a group's name, externalId and members; its row and members."""
    group = Group.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
    fields, ids = resources.group_fields(group)
    fields["name"] = _checked_name(fields["name"])
    async with transaction():
        return await run_db(_replace_group, group_id, fields, ids, versions)


@bp.put("/Groups/<id:group_id>")
@requires("scim")
async def replace_group(group_id: int) -> Response:
    """Replace a group's name, externalId and members."""
    row, members = await replace(group_id, json_body(), write_condition(1).allowed)
    return group_answer(row, members)


def _member_filter_ids(op: Any) -> list[int] | None:
    """The ids a remove's members[value eq "id"] path names (None: every member)."""
    node = op.path.ast
    val_filter = getattr(node, "val_filter", None)
    if val_filter is None:
        return None
    terms = [val_filter]
    ids = []
    while terms:
        term = terms.pop()
        if hasattr(term, "terms") and str(getattr(term, "op", "")) == "or":
            terms.extend(term.terms)
            continue
        attr = getattr(getattr(term, "attr_path", None), "attr", "")
        if str(getattr(term, "op", "")) != "eq" or attr.lower() != "value":
            raise not_supported("member filters other than value eq (or'ed)")
        ids.extend(resources.member_ids([GroupMember(value=str(term.value))]))
    return ids


class _MemberPlan:
    """A PATCH's member operations folded into one change, in their order: the last word on
    each member wins, and nothing reads the members that are not named."""

    def __init__(self) -> None:
        self.replace: list[int] | None = None  # replace or remove-all: the new whole list
        self.add: dict[int, None] = {}
        self.remove: dict[int, None] = {}

    def adding(self, ids: list[int]) -> None:
        for user_id in ids:
            self.remove.pop(user_id, None)
            self.add[user_id] = None

    def removing(self, ids: list[int] | None) -> None:
        if ids is None:
            self.replacing([])
            return
        for user_id in ids:
            self.add.pop(user_id, None)
            self.remove[user_id] = None

    def replacing(self, ids: list[int]) -> None:
        self.replace, self.add, self.remove = ids, {}, {}

    def apply(self, group_id: int) -> None:
        if self.replace is not None:
            scim.set_members(group_id, self.replace)
        scim.remove_members(group_id, list(self.remove))
        scim.add_members(group_id, list(self.add))


def _ids_of(members: Any) -> list[int]:
    return resources.member_ids(Group.model_validate({"members": members}).members or [])


def _plan_members(plan: _MemberPlan, kind: str, op: Any, members: Any) -> None:
    if kind == "remove":
        plan.removing(_member_filter_ids(op) if op.path is not None else None)
    elif kind == "replace":
        plan.replacing(_ids_of(members))
    else:
        plan.adding(_ids_of(members))


def _patch_group(group_id: int, patch: PatchOp[Group], versions: Any) -> int:
    row = scim.get_group(group_id)
    if versions is not None and (row.version,) not in versions:
        versions = []  # stale: the write below finds no row, a 412
    fields: dict[str, Any] = {}
    plan = _MemberPlan()
    for op in patch.operations or []:
        kind = op.op.value
        if op.path is None:
            # No path (Entra ID's form): the value's attributes, as if each were named.
            values = dict(op.value or {})
            members = next((v for k, v in values.items() if k.lower() == "members"), None)
            if members is not None:
                _plan_members(plan, kind, op, members)
            named = {k: v for k, v in values.items() if k.lower() != "members"}
            if named:
                fields.update(_group_attributes(row, named))
        elif op.path.attr.lower() == "members":
            _plan_members(plan, kind, op, op.value)
        else:
            value = None if kind == "remove" else op.value
            fields.update(_group_attributes(row, {str(op.path): value}))
    # The version read is the one the write must find: one written meanwhile is a 412.
    scim.touch_group(group_id, [(row.version,)] if versions is None else versions, **fields)
    plan.apply(group_id)
    return int(scim.get_group(group_id).version)


def _group_attributes(row: Any, values: dict[str, Any]) -> dict[str, Any]:
    current = resources.group_resource(row, None).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    merged = {**current, **values}
    group = Group.model_validate(merged, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
    fields, _ = resources.group_fields(group)
    fields["name"] = _checked_name(fields["name"])
    return fields


async def patch(group_id: int, body: dict[str, Any], versions: Versions) -> int:
    """Apply PATCH operations; the group's new version."""
    operations = PatchOp[Group].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    async with transaction():
        return await run_db(_patch_group, group_id, operations, versions)


async def delete(group_id: int, versions: Versions) -> None:
    """Delete a group; its members lose its scopes at once."""
    async with transaction():
        await run_db(scim.delete_group, group_id, versions)


@bp.patch("/Groups/<id:group_id>")
@requires("scim")
async def patch_group(group_id: int) -> Response:
    """Apply PATCH operations; adding or removing members reads none of the others."""
    version = await patch(group_id, json_body(), write_condition(1).allowed)
    # 204 (RFC 7644 3.5.2 allows it): the answer would carry every member, and a group of
    # 10,000 would cost its PATCH what a read of them does.
    return Response(status=204, headers={"ETag": etag(version)})


@bp.delete("/Groups/<id:group_id>")
@requires("scim")
async def delete_group(group_id: int) -> Response:
    """Delete a group; its members lose its scopes at once."""
    await delete(group_id, write_condition(1).allowed)
    return Response(status=204)
