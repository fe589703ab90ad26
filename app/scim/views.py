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
    InvalidFilterException,
    InvalidValueException,
    ListResponse,
    NotFoundException,
    NotImplementedException,
    PatchOp,
    ResourceType,
    ResponseParameters,
    Schema,
    ScimFilter,
    SearchRequest,
    User,
)
from scim2_models.path import AttrPath

from app.api.conditional import etag, not_modified, write_condition
from app.db.session import autocommit, run_db, transaction
from app.schemas.users import UserCreate
from app.scim import errors, resources
from app.scim.resources import MAX_RESULTS
from app.services import passwords, scim, scim_filters, users
from app.web.auth import requires
from app.web.problems import SCIM_MIMETYPE, SCIM_PREFIX

bp = Blueprint("scim", __name__, url_prefix=SCIM_PREFIX)
errors.install(bp)

_ROW = {"User": scim.get_user, "Group": scim.get_group}


def answer(body: dict[str, Any], status: int = 200, version: int | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=SCIM_MIMETYPE)
    if version is not None:
        response.headers["ETag"] = etag(version)
    return response


def json_body() -> dict[str, Any]:
    body: dict[str, Any] = request.get_json()  # a JSON object: bodies.require_json_body
    return body


def not_supported(what: str) -> InvalidValueException:
    return InvalidValueException(detail=f"Not supported: {what}.")


# Discovery ---------------------------------------------------------------------------------


@bp.get("/ServiceProviderConfig")
@requires("scim")
async def get_config() -> Response:
    """What this service supports."""
    return answer(resources.dump(resources.config(), Context.RESOURCE_QUERY_RESPONSE))


def _listed(kind: type[Any], items: list[Any]) -> Response:
    listing = ListResponse[kind](  # type: ignore[valid-type]
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return answer(resources.dump(listing, Context.SEARCH_RESPONSE))


@bp.get("/ResourceTypes")
@requires("scim")
async def list_resource_types() -> Response:
    """User and Group."""
    return _listed(ResourceType, resources.resource_types())


@bp.get("/ResourceTypes/<type_id>")
@requires("scim")
async def get_resource_type(type_id: str) -> Response:
    """One resource type."""
    for found in resources.resource_types():
        if found.id == type_id:
            return answer(resources.dump(found, Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"No resource type {type_id}.")


@bp.get("/Schemas")
@requires("scim")
async def list_schemas() -> Response:
    """The User and Group schemas, as stored here."""
    return _listed(Schema, resources.schemas())


@bp.get("/Schemas/<path:schema_id>")
@requires("scim")
async def get_schema(schema_id: str) -> Response:
    """One schema."""
    for found in resources.schemas():
        if found.id == schema_id:
            return answer(resources.dump(found, Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"No schema {schema_id}.")


# Lists -------------------------------------------------------------------------------------


def _search(kind: str, parameters: dict[str, Any]) -> Response:
    model = User if kind == "User" else Group
    query = SearchRequest[model].model_validate(  # type: ignore[valid-type]
        parameters, scim_ctx=Context.SEARCH_REQUEST
    )
    probe = ScimFilter[model]("id pr")  # type: ignore[valid-type]

    def resolve(path: AttrPath) -> tuple[str, str | None]:
        bound = probe.resolve_comparison(path)
        if bound is None:  # a bound filter resolves or raises: never here
            raise InvalidFilterException(detail=f"Unknown attribute {path.attr}.")
        return bound.field_name, bound.sub_field_name

    attributes = scim_filters.USER_ATTRIBUTES if kind == "User" else scim_filters.GROUP_ATTRIBUTES
    translate = scim_filters.SqlFilter(attributes, resolve, members=kind == "Group")
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
    return answer(resources.dump(listing, Context.SEARCH_RESPONSE, response_parameters=query))


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
        return await run_db(_search, "User", request.args.to_dict())


@bp.get("/Groups")
@requires("scim")
async def list_groups() -> Response:
    """Groups matching the filter, sorted, a page of startIndex and count."""
    async with autocommit():
        return await run_db(_search, "Group", request.args.to_dict())


@bp.post("/Users/.search")
@requires("scim")
async def search_users() -> Response:
    """The same search as GET /Users, its parameters in a SearchRequest body (RFC 7644 3.4.3),
    which keeps a filter out of URLs and their logs."""
    parameters = json_body()
    async with autocommit():
        return await run_db(_search, "User", parameters)


@bp.post("/Groups/.search")
@requires("scim")
async def search_groups() -> Response:
    """The same search as GET /Groups, its parameters in a SearchRequest body."""
    parameters = json_body()
    async with autocommit():
        return await run_db(_search, "Group", parameters)


@bp.post("/.search")
@requires("scim")
async def search_everything() -> Response:
    """A search over every resource type at once (RFC 7644 3.4.3): not offered, so a 501."""
    raise NotImplementedException(detail="Search /Users/.search or /Groups/.search.")


def selected() -> ResponseParameters[Any]:
    """The request's attributes and excludedAttributes, for one resource's answer."""
    return ResponseParameters.model_validate(
        {k: v for k, v in request.args.items() if k in {"attributes", "excludedAttributes"}}
    )


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
    body = resources.dump(resource, context, response_parameters=selected())
    response = answer(body, 201 if created else 200, row.version)
    if created:
        response.headers["Location"] = url_for("scim.get_user", user_id=row.id, _external=True)
    return response


@bp.post("/Users")
@requires("scim")
async def create_user() -> Response:
    """Provision a user; a taken userName or email is a 409 (uniqueness)."""
    user: User[Any] = User.model_validate(json_body(), scim_ctx=Context.RESOURCE_CREATION_REQUEST)
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
    user: User[Any] = User.model_validate(
        json_body(), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
    )
    fields = _checked_user(resources.user_fields(user))
    password_hash = await _password_hash(user)
    if password_hash is not None:
        fields["password_hash"] = password_hash
    condition = write_condition(1)
    async with transaction():
        row = await run_db(_replace_user, user_id, fields, condition.allowed)
    return _user_answer(row)


_UNSET = object()  # a PATCH that leaves the password alone


def _patch_password(patch: PatchOp[User[Any]]) -> Any:
    """The password a PATCH sets (None: removed; _UNSET: not touched), its last word."""
    found: Any = _UNSET
    for op in patch.operations or []:
        if op.path is None:
            values = {k.lower(): v for k, v in dict(op.value or {}).items()}
            if "password" in values:
                found = values["password"]
        elif op.path.attr.lower() == "password":
            found = None if op.op.value == "remove" else op.value
    return found


def _patched_user(
    user_id: int, patch: PatchOp[User[Any]], versions: Any, password_hash: Any
) -> Any:
    row = scim.get_user(user_id)
    if versions is not None and (row.version,) not in versions:
        versions = []  # stale: the write below finds no row, a 412
    user = resources.user_resource(row)
    patch.patch(user)
    fields = _checked_user(resources.user_fields(user))
    if password_hash is not _UNSET:
        fields["password_hash"] = password_hash
    # The version read is the one the write must find: one written meanwhile is a 412.
    return scim.replace_user(user_id, fields, [(row.version,)] if versions is None else versions)


@bp.patch("/Users/<id:user_id>")
@requires("scim")
async def patch_user(user_id: int) -> Response:
    """Apply PATCH operations (add, replace, remove; RFC 7644 3.5.2)."""
    patch = PatchOp[User[Any]].model_validate(json_body(), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    password = _patch_password(patch)
    password_hash = password
    if isinstance(password, str):
        # Hashed first, on its own bounded threads: never inside the transaction below.
        checked = passwords.checked_password(password)
        password_hash = await passwords.hashing.run(passwords.hash_password, checked)
    condition = write_condition(1)
    async with transaction():
        row = await run_db(_patched_user, user_id, patch, condition.allowed, password_hash)
    return _user_answer(row)


@bp.delete("/Users/<id:user_id>")
@requires("scim")
async def delete_user(user_id: int) -> Response:
    """Deprovision a user (their posts, sessions and memberships go with them)."""
    condition = write_condition(1)
    async with autocommit():
        await run_db(users.delete_user, user_id, condition.allowed)
    return Response(status=204)
