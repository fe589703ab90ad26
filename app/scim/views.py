"""The SCIM 2.0 service provider (RFC 7643, RFC 7644) at /scim/v2, for identity providers.

Every operation needs an API key with the ``scim`` scope. Bodies and answers are
``application/scim+json`` in scim2-models' resources; errors are SCIM's (app.scim.errors).
The operations are SCIM's own, described by its discovery endpoints (/ServiceProviderConfig,
/ResourceTypes, /Schemas), which identity providers read; they are not in the OpenAPI
document, whose schemas and error format they do not share.
"""

from typing import Any

from flask import Blueprint, Response, json, request, url_for
from scim2_models import (
    Context,
    Group,
    GroupMember,
    InvalidFilterException,
    InvalidValueException,
    ListResponse,
    NotFoundException,
    PatchOp,
    ScimFilter,
    SearchRequest,
    User,
)
from scim2_models.path import AttrPath

from app.api.conditional import etag, not_modified, write_condition
from app.db.session import autocommit, run_db, transaction
from app.schemas.groups import GroupCreate
from app.schemas.users import UserCreate
from app.scim import errors, resources
from app.scim.resources import MAX_RESULTS
from app.services import passwords, scim, users
from app.web.auth import requires

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
errors.install(bp)

_ROW = {"User": scim.get_user, "Group": scim.get_group}


def _answer(body: dict[str, Any], status: int = 200, version: int | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=errors.SCIM_MIMETYPE)
    if version is not None:
        response.headers["ETag"] = etag(version)
    return response


def _body() -> dict[str, Any]:
    body: dict[str, Any] = request.get_json()  # a JSON object: bodies.require_json_body
    return body


def _not_supported(what: str) -> InvalidValueException:
    return InvalidValueException(detail=f"Not supported: {what}.")


# Discovery ---------------------------------------------------------------------------------


@bp.get("/ServiceProviderConfig")
@requires("scim")
async def get_config() -> Response:
    """What this service supports."""
    return _answer(resources.dump(resources.config(), Context.RESOURCE_QUERY_RESPONSE))


def _listed(items: list[Any]) -> Response:
    listing = ListResponse[Any](
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return _answer(resources.dump(listing, Context.SEARCH_RESPONSE))


@bp.get("/ResourceTypes")
@requires("scim")
async def list_resource_types() -> Response:
    """User and Group."""
    return _listed(resources.resource_types())


@bp.get("/ResourceTypes/<type_id>")
@requires("scim")
async def get_resource_type(type_id: str) -> Response:
    """One resource type."""
    for found in resources.resource_types():
        if found.id == type_id:
            return _answer(resources.dump(found, Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"No resource type {type_id}.")


@bp.get("/Schemas")
@requires("scim")
async def list_schemas() -> Response:
    """The User and Group schemas, as stored here."""
    return _listed(resources.schemas())


@bp.get("/Schemas/<path:schema_id>")
@requires("scim")
async def get_schema(schema_id: str) -> Response:
    """One schema."""
    for found in resources.schemas():
        if found.id == schema_id:
            return _answer(resources.dump(found, Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"No schema {schema_id}.")


# Lists -------------------------------------------------------------------------------------


def _search(kind: str) -> Response:
    model = User if kind == "User" else Group
    query = SearchRequest[model].model_validate(  # type: ignore[valid-type]
        request.args.to_dict(), scim_ctx=Context.SEARCH_REQUEST
    )
    probe = ScimFilter[model]("id pr")  # type: ignore[valid-type]

    def resolve(path: AttrPath) -> tuple[str, str | None]:
        bound = probe.resolve_comparison(path)
        if bound is None:  # a bound filter resolves or raises: never here
            raise InvalidFilterException(detail=f"Unknown attribute {path.attr}.")
        return bound.field_name, bound.sub_field_name

    attributes = scim.USER_ATTRIBUTES if kind == "User" else scim.GROUP_ATTRIBUTES
    translate = scim.SqlFilter(attributes, resolve, members=kind == "Group")
    condition = None if query.filter is None else translate.visit(query.filter.ast)
    sort = None
    if query.sort_by is not None:
        if not isinstance(query.sort_by.ast, AttrPath):
            raise InvalidValueException(detail="sortBy names one attribute.")
        descending = query.sort_order is not None and query.sort_order.value == "descending"
        sort = (translate.attribute(query.sort_by.ast), descending)
    count = MAX_RESULTS if query.count is None else min(query.count, MAX_RESULTS)
    offset = query.start_index_0 or 0
    table = "users" if kind == "User" else "groups"
    rows, total = scim.search(table, condition, sort, offset, count)
    if kind == "User":
        found: list[Any] = [resources.user_resource(row) for row in rows]
    else:
        members = scim.members_of(row.id for row in rows) if _wants_members(query) else {}
        found = [resources.group_resource(row, members.get(row.id)) for row in rows]
    listing = ListResponse[model](  # type: ignore[valid-type]
        total_results=total, start_index=offset + 1, items_per_page=len(found), resources=found
    )
    return _answer(resources.dump(listing, Context.SEARCH_RESPONSE, response_parameters=query))


def _wants_members(query: Any) -> bool:
    # A group's members are read only when the answer carries them.
    named = [a.lower() for a in query.attributes or []]
    excluded = [a.lower() for a in query.excluded_attributes or []]
    return (not named or "members" in named or any(a.startswith("members.") for a in named)) and (
        "members" not in excluded
    )


@bp.get("/Users")
@requires("scim")
async def list_users() -> Response:
    """Users matching the filter, sorted, a page of startIndex and count."""
    async with autocommit():
        return await run_db(_search, "User")


@bp.get("/Groups")
@requires("scim")
async def list_groups() -> Response:
    """Groups matching the filter, sorted, a page of startIndex and count."""
    async with autocommit():
        return await run_db(_search, "Group")


# Users -------------------------------------------------------------------------------------


def _checked_user(fields: dict[str, Any]) -> dict[str, Any]:
    # The same rules as POST /users: NFC, no invisible characters, a valid email.
    checked = UserCreate(username=fields["username"], email=fields["email"])
    return {**fields, "username": checked.username, "email": checked.email}


async def _password_hash(user: User[Any]) -> str | None:
    if user.password is None:
        return None
    checked = passwords.checked_password(user.password)
    return await passwords.hashing.run(passwords.hash_password, checked)


def _user_answer(row: Any, *, created: bool = False) -> Response:
    resource = resources.user_resource(row)
    context = Context.RESOURCE_CREATION_RESPONSE if created else Context.RESOURCE_QUERY_RESPONSE
    response = _answer(resources.dump(resource, context), 201 if created else 200, row.version)
    if created:
        response.headers["Location"] = url_for("scim.get_user", user_id=row.id, _external=True)
    return response


@bp.post("/Users")
@requires("scim")
async def create_user() -> Response:
    """Provision a user; a taken userName or email is a 409 (uniqueness)."""
    user: User[Any] = User.model_validate(_body(), scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    fields = _checked_user(resources.user_fields(user))
    password_hash = await _password_hash(user)
    if password_hash is not None:
        fields["password_hash"] = password_hash
    async with autocommit():
        row = await run_db(scim.create_user, fields)
    return _user_answer(row, created=True)


@bp.get("/Users/<id:user_id>")
@requires("scim")
async def get_user(user_id: int) -> Response:
    """One user (304 where If-None-Match names its version)."""
    async with autocommit():
        row = await run_db(scim.get_user, user_id)
    return not_modified("user", row.version) or _user_answer(row)


def _replace_user(user_id: int, fields: dict[str, Any], versions: Any) -> Any:
    return scim.replace_user(user_id, fields, versions)


@bp.put("/Users/<id:user_id>")
@requires("scim")
async def replace_user(user_id: int) -> Response:
    """Replace a user's attributes (If-Match: only at that version, else 412)."""
    user: User[Any] = User.model_validate(_body(), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
    fields = _checked_user(resources.user_fields(user))
    password_hash = await _password_hash(user)
    if password_hash is not None:
        fields["password_hash"] = password_hash
    condition = write_condition(1)
    async with transaction():
        row = await run_db(_replace_user, user_id, fields, condition.allowed)
    return _user_answer(row)


def _patched_user(user_id: int, patch: PatchOp[User[Any]], versions: Any) -> Any:
    row = scim.get_user(user_id)
    if versions is not None and (row.version,) not in versions:
        versions = []  # stale: the write below finds no row, a 412
    user = resources.user_resource(row)
    patch.patch(user)
    if user.password is not None:
        # Hashing runs on its own bounded threads, not inside this transaction.
        raise _not_supported("a password by PATCH; send it with PUT")
    fields = _checked_user(resources.user_fields(user))
    # The version read is the one the write must find: one written meanwhile is a 412.
    return scim.replace_user(user_id, fields, [(row.version,)] if versions is None else versions)


@bp.patch("/Users/<id:user_id>")
@requires("scim")
async def patch_user(user_id: int) -> Response:
    """Apply PATCH operations (add, replace, remove; RFC 7644 3.5.2)."""
    patch = PatchOp[User[Any]].model_validate(_body(), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    condition = write_condition(1)
    async with transaction():
        row = await run_db(_patched_user, user_id, patch, condition.allowed)
    return _user_answer(row)


@bp.delete("/Users/<id:user_id>")
@requires("scim")
async def delete_user(user_id: int) -> Response:
    """Deprovision a user (their posts, sessions and memberships go with them)."""
    condition = write_condition(1)
    async with autocommit():
        await run_db(users.delete_user, user_id, condition.allowed)
    return Response(status=204)


# Groups ------------------------------------------------------------------------------------


def _group_answer(
    row: Any, members: list[tuple[int, str]] | None, *, created: bool = False
) -> Response:
    resource = resources.group_resource(row, members)
    context = Context.RESOURCE_CREATION_RESPONSE if created else Context.RESOURCE_QUERY_RESPONSE
    response = _answer(resources.dump(resource, context), 201 if created else 200, row.version)
    if created:
        response.headers["Location"] = url_for("scim.get_group", group_id=row.id, _external=True)
    return response


def _checked_name(name: Any) -> str:
    return GroupCreate(name=name, scopes=[]).name


def _create_group(fields: dict[str, Any], ids: list[int] | None) -> tuple[Any, Any]:
    row = scim.create_group(fields["name"], fields["external_id"])
    if ids:
        scim.add_members(row.id, ids)
    return row, scim.members_of([row.id])[row.id]


@bp.post("/Groups")
@requires("scim")
async def create_group() -> Response:
    """Provision a group (no scopes: an admin grants them through /groups)."""
    group = Group.model_validate(_body(), scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    fields, ids = resources.group_fields(group)
    fields["name"] = _checked_name(fields["name"])
    async with transaction():
        row, members = await run_db(_create_group, fields, ids)
    return _group_answer(row, members, created=True)


def _read_group(group_id: int) -> tuple[Any, Any]:
    row = scim.get_group(group_id)
    return row, scim.members_of([group_id])[group_id]


@bp.get("/Groups/<id:group_id>")
@requires("scim")
async def get_group(group_id: int) -> Response:
    """One group with its members."""
    async with autocommit():
        row, members = await run_db(_read_group, group_id)
    return not_modified("group", row.version) or _group_answer(row, members)


def _replace_group(
    group_id: int, fields: dict[str, Any], ids: list[int] | None, versions: Any
) -> tuple[Any, Any]:
    scim.touch_group(group_id, versions, **fields)
    scim.set_members(group_id, ids or [])
    return _read_group(group_id)


@bp.put("/Groups/<id:group_id>")
@requires("scim")
async def replace_group(group_id: int) -> Response:
    """Replace a group's name, externalId and members."""
    group = Group.model_validate(_body(), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
    fields, ids = resources.group_fields(group)
    fields["name"] = _checked_name(fields["name"])
    condition = write_condition(1)
    async with transaction():
        row, members = await run_db(_replace_group, group_id, fields, ids, condition.allowed)
    return _group_answer(row, members)


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
            raise _not_supported("member filters other than value eq (or'ed)")
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


@bp.patch("/Groups/<id:group_id>")
@requires("scim")
async def patch_group(group_id: int) -> Response:
    """Apply PATCH operations; adding or removing members reads none of the others."""
    patch = PatchOp[Group].model_validate(_body(), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    condition = write_condition(1)
    async with transaction():
        version = await run_db(_patch_group, group_id, patch, condition.allowed)
    # 204 (RFC 7644 3.5.2 allows it): the answer would carry every member, and a group of
    # 10,000 would cost its PATCH what a read of them does.
    return Response(status=204, headers={"ETag": etag(version)})


@bp.delete("/Groups/<id:group_id>")
@requires("scim")
async def delete_group(group_id: int) -> Response:
    """Delete a group; its members lose its scopes at once."""
    condition = write_condition(1)
    async with transaction():
        await run_db(scim.delete_group, group_id, condition.allowed)
    return Response(status=204)


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@requires("scim")
async def not_found(rest: str) -> Response:
    """Anything else under /scim/v2 is a SCIM 404."""
    raise NotFoundException(detail=f"No SCIM endpoint /{rest}.")
