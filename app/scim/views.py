"""The SCIM 2.0 service provider (RFC 7643, RFC 7644) at /scim/v2, for identity providers.

Every operation needs an API key with the ``scim`` scope. Bodies and answers are
``application/scim+json`` in scim2-models' resources; errors are SCIM's (app.scim.errors).
The operations are SCIM's own, described by its discovery endpoints (/ServiceProviderConfig,
/ResourceTypes, /Schemas), which identity providers read; they are not in the OpenAPI
document, whose schemas and error format they do not share.
"""

import re
from typing import Any

from flask import Blueprint, json, request
from scim2_models import (
    Context,
    Group,
    InvalidCursorException,
    InvalidFilterException,
    InvalidValueException,
    ListResponse,
    NotFoundException,
    NotImplementedException,
    ResourceType,
    ResponseParameters,
    Schema,
    ScimFilter,
    SearchRequest,
    User,
)
from scim2_models.path import AttrPath

from app.api.conditional import etag
from app.db import user_search
from app.db.session import autocommit, db, run_db
from app.scim import errors, resources
from app.scim.resources import MAX_RESULTS
from app.services import scim, scim_filters
from app.web.auth import requires
from app.web.problems import SCIM_MIMETYPE, SCIM_PREFIX
from app.web.responses import Response

bp = Blueprint("scim", __name__, url_prefix=SCIM_PREFIX)
errors.install(bp)


def answer(body: dict[str, Any], status: int = 200, version: int | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=SCIM_MIMETYPE)
    if version is not None:
        response.headers["ETag"] = etag(version)
    return response


def resource_answer(resource: Any, version: int, *, created: bool = False) -> Response:
    """A user or group as SCIM JSON with its ETag; when created, a 201 with its Location."""
    context = Context.RESOURCE_CREATION_RESPONSE if created else Context.RESOURCE_QUERY_RESPONSE
    body = resources.dump(resource, context, response_parameters=selected())
    response = answer(body, 201 if created else 200, version)
    if created:
        response.headers["Location"] = str(resource.meta.location)
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


def _one(items: list[Any], item_id: str, what: str) -> Response:
    for found in items:
        if found.id == item_id:
            return answer(resources.dump(found, Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"No {what} {item_id}.")


@bp.get("/ResourceTypes")
@requires("scim")
async def list_resource_types() -> Response:
    """User and Group."""
    return _listed(ResourceType, resources.resource_types())


@bp.get("/ResourceTypes/<type_id>")
@requires("scim")
async def get_resource_type(type_id: str) -> Response:
    """One resource type."""
    return _one(resources.resource_types(), type_id, "resource type")


@bp.get("/Schemas")
@requires("scim")
async def list_schemas() -> Response:
    """The User and Group schemas, as stored here."""
    return _listed(Schema, resources.schemas())


@bp.get("/Schemas/<path:schema_id>")
@requires("scim")
async def get_schema(schema_id: str) -> Response:
    """One schema."""
    return _one(resources.schemas(), schema_id, "schema")


# Lists -------------------------------------------------------------------------------------


# RFC 9865 cursors: the last id of the page, which the next page starts after. Keyset pages
# neither repeat nor skip a row while others come and go, as /users's own cursors.
CURSOR_PREFIX = "after-"
_ID = re.compile(r"\d{1,18}")  # below 2**63, as every id


def _after(cursor: str | None, sort: Any) -> int | None:
    """The id a cursor says to start after (0: the first page); None: index paging."""
    if cursor is None:
        return None
    if sort is not None:
        raise InvalidValueException(detail="Cursor pages are in id order: leave out sortBy.")
    if cursor == "":
        return 0
    raw = cursor.removeprefix(CURSOR_PREFIX)
    if not cursor.startswith(CURSOR_PREFIX) or not _ID.fullmatch(raw):
        raise InvalidCursorException(detail="This cursor was not made here; start again.")
    return int(raw)


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
    side_index = kind == "User" and user_search.ready(db.engine)
    translate = scim_filters.SqlFilter(
        attributes,
        resolve,
        members=kind == "Group",
        side_index=side_index,
        common=user_search.common(db.engine) if side_index else frozenset(),
    )
    condition = None if query.filter is None else translate.visit(query.filter.ast)
    sort = None
    if query.sort_by is not None:
        if not isinstance(query.sort_by.ast, AttrPath):
            raise InvalidValueException(detail="sortBy names one attribute.")
        descending = query.sort_order is not None and query.sort_order.value == "descending"
        sort = (translate.attribute(query.sort_by.ast), descending)
    count = MAX_RESULTS if query.count is None else min(query.count, MAX_RESULTS)
    offset = query.start_index_0 or 0
    after = _after(query.cursor, sort)
    table = "users" if kind == "User" else "groups"
    rows, total = scim.search(table, condition, sort, scim.Window(offset, count, after))
    next_cursor = None
    if after is not None:
        if len(rows) > count:
            next_cursor = f"{CURSOR_PREFIX}{rows[count - 1].id}"
        rows = rows[:count]
    if kind == "User":
        found: list[Any] = [resources.user_resource(row) for row in rows]
    else:
        members = scim.members_of(row.id for row in rows) if _wants_members(query) else {}
        found = [resources.group_resource(row, members.get(row.id)) for row in rows]
    listing = ListResponse[model](  # type: ignore[valid-type]
        total_results=total,
        start_index=None if after is not None else offset + 1,
        items_per_page=len(found),
        next_cursor=next_cursor,
        resources=found,
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
