"""SCIM Bulk (RFC 7644 3.7): many operations in one request, each in its own transaction,
with bulkId references to what an earlier operation of the same request created.

Operations run in order, one at a time, each through the same function its own endpoint
calls (app.scim.users, app.scim.groups): the same checks, the same answers. A failure is
that operation's answer and the next one runs, until ``failOnErrors`` failures.
"""

import re
from http import HTTPStatus
from typing import Any

from flask import Response, url_for
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scim2_models import InvalidSyntaxException, PayloadTooLargeException, SCIMException

from app.api.conditional import etag, versions_named
from app.errors import AppError
from app.scim import groups, users
from app.scim.resources import MAX_BULK_OPERATIONS
from app.scim.views import answer, bp, json_body
from app.web.auth import requires
from app.web.problems import scim_error_body

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_REFERENCE = re.compile(r"bulkId:([^/\s\"]+)")
_PATH = re.compile(r"/(Users|Groups)(?:/([^/]+))?")


class _Operation(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: str
    bulk_id: str | None = Field(default=None, alias="bulkId")
    version: str | None = None
    path: str
    data: dict[str, Any] | None = None


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schemas: list[str]
    fail_on_errors: int | None = Field(default=None, alias="failOnErrors", ge=1)
    operations: list[_Operation] = Field(alias="Operations", max_length=MAX_BULK_OPERATIONS)


def _resolved(value: Any, created: dict[str, str]) -> Any:
    """``value`` with every bulkId:<id> replaced by the id its operation created."""
    if isinstance(value, str):

        def swap(match: re.Match[str]) -> str:
            found = created.get(match.group(1))
            if found is None:
                raise _UnresolvedError(match.group(1))
            return found

        return _REFERENCE.sub(swap, value)
    if isinstance(value, list):
        return [_resolved(item, created) for item in value]
    if isinstance(value, dict):
        return {key: _resolved(item, created) for key, item in value.items()}
    return value


class _UnresolvedError(Exception):
    """A bulkId that no earlier operation of this request created."""


async def _run(operation: _Operation, created: dict[str, str]) -> dict[str, Any]:
    """One operation's outcome: status, and location and version, or its error."""
    method = operation.method.upper()
    path = _resolved(operation.path, created)
    match = _PATH.fullmatch(path)
    if match is None or (match.group(2) is None) != (method == "POST"):
        return _failure(400, f"No {method} {path} in a bulk request.", "invalidPath")
    kind, raw_id = match.groups()
    module = users if kind == "Users" else groups
    data = _resolved(operation.data or {}, created)
    if method == "POST":
        made = await module.create(data)
        row = made[0] if isinstance(made, tuple) else made
        return _success(kind, row.id, row.version, 201)
    if not raw_id.isdigit():
        return _failure(404, f"No {kind[:-1].lower()} {raw_id}.")
    versions = None if operation.version is None else versions_named(operation.version)
    return await _change(method, kind, int(raw_id), data, versions)


async def _change(
    method: str, kind: str, item_id: int, data: dict[str, Any], versions: Any
) -> dict[str, Any]:
    module: Any = users if kind == "Users" else groups
    if method == "PUT":
        replaced = await module.replace(item_id, data, versions)
        row = replaced[0] if isinstance(replaced, tuple) else replaced
        return _success(kind, item_id, row.version, 200)
    if method == "PATCH":
        patched = await module.patch(item_id, data, versions)
        version = patched if isinstance(patched, int) else patched.version
        return _success(kind, item_id, version, 200)
    if method == "DELETE":
        await module.delete(item_id, versions)
        return {"status": "204"}
    return _failure(405, f"{method} is not a bulk method.")


def _success(kind: str, item_id: int, version: int, status: int) -> dict[str, Any]:
    if kind == "Users":
        location = url_for("scim.get_user", user_id=item_id, _external=True)
    else:
        location = url_for("scim.get_group", group_id=item_id, _external=True)
    return {
        "location": location,
        "version": etag(version),
        "status": str(status),
    }


def _failure(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    return {"status": str(status), "response": scim_error_body(status, detail, scim_type)}


def _failed(error: Exception) -> dict[str, Any]:
    if isinstance(error, SCIMException):
        return _failure(error.status, error.detail or "", error.scim_type)
    if isinstance(error, ValidationError):
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
        return _failure(400, f"Invalid value: {', '.join(fields)}.", "invalidValue")
    if isinstance(error, _UnresolvedError):
        detail = f"bulkId:{error.args[0]} names no resource created earlier in this request."
        return _failure(409, detail, "invalidValue")
    status = int(error.status) if isinstance(error, AppError) else 500
    detail = error.detail if isinstance(error, AppError) else "The operation failed."
    return _failure(status, detail, _SCIM_TYPES.get(status))


_SCIM_TYPES: dict[int, str] = {
    HTTPStatus.CONFLICT: "uniqueness",
    HTTPStatus.BAD_REQUEST: "invalidValue",
}


@bp.post("/Bulk")
@requires("scim")
async def bulk() -> Response:
    """Run a BulkRequest's operations in order; answer a BulkResponse."""
    body = json_body()
    operations = body.get("Operations")
    if isinstance(operations, list) and len(operations) > MAX_BULK_OPERATIONS:
        # RFC 7644 3.7.4: over maxOperations, the whole request is a 413.
        detail = f"At most {MAX_BULK_OPERATIONS} operations a request; {len(operations)} sent."
        raise PayloadTooLargeException(detail=detail)
    parsed = _Request.model_validate(body)
    if BULK_REQUEST not in parsed.schemas:
        raise InvalidSyntaxException(detail=f"schemas must name {BULK_REQUEST}.")
    created: dict[str, str] = {}
    outcomes: list[dict[str, Any]] = []
    errors = 0
    for operation in parsed.operations:
        if parsed.fail_on_errors is not None and errors >= parsed.fail_on_errors:
            break
        try:
            outcome = await _run(operation, created)
        except (SCIMException, ValidationError, AppError, _UnresolvedError) as error:
            outcome = _failed(error)
        if int(outcome["status"]) >= HTTPStatus.BAD_REQUEST:
            errors += 1
        elif operation.method.upper() == "POST" and operation.bulk_id is not None:
            created[operation.bulk_id] = outcome["location"].rsplit("/", 1)[1]
        outcomes.append(
            {"method": operation.method.upper(), "bulkId": operation.bulk_id, **outcome}
        )
    body = {"schemas": [BULK_RESPONSE], "Operations": _without_nulls(outcomes)}
    return answer(body)


def _without_nulls(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in outcome.items() if v is not None} for outcome in outcomes]
