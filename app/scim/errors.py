"""SCIM's error schema (RFC 7644 3.12) for everything under /scim/v2.

The app's problem+json handler (app.web.problems) answers every error, the pipeline's
included (401, 403, 413, 429, 503); an after-request hook of the SCIM blueprint rewrites its
answer into SCIM's schema and content type, keeping the status and headers such as
WWW-Authenticate and Retry-After. scim2-models' own exceptions carry their scimType.
"""

import json
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response
from pydantic import ValidationError
from scim2_models import Error, SCIMException

from app.db.session import db
from app.errors import PROBLEM_MIMETYPE

SCIM_MIMETYPE = "application/scim+json"

# The scimType of a status whose problem says no more (RFC 7644 3.12, table 9).
_SCIM_TYPES = {409: "uniqueness"}


def scim_error(
    status: int, detail: str, scim_type: str | None = None, headers: Any = ()
) -> Response:
    """An error in SCIM's schema."""
    body = Error(status=status, detail=detail, scim_type=scim_type).model_dump()
    response = Response(json.dumps(body), status=status, mimetype=SCIM_MIMETYPE)
    response.headers.extend(headers)
    return response


def _from_problem(response: Response) -> Response:
    if response.mimetype != PROBLEM_MIMETYPE:
        return response
    problem = json.loads(response.get_data())
    status = response.status_code
    scim_type = _SCIM_TYPES.get(status)
    if status in (400, 422) and problem.get("errors"):
        scim_type = "invalidValue"
    kept = [
        (k, v) for k, v in response.headers if k.lower() not in {"content-type", "content-length"}
    ]
    # A body that failed validation is a 400 in SCIM, which has no 422.
    return scim_error(
        400 if status == HTTPStatus.UNPROCESSABLE_ENTITY else status,
        str(problem.get("detail", "")),
        scim_type,
        kept,
    )


def _scim_exception(error: SCIMException) -> Response:
    db.session.rollback()
    return scim_error(error.status, error.detail or "", error.scim_type)


def _validation_error(error: ValidationError) -> Response:
    # Never the values: a submitted password may be among them.
    db.session.rollback()
    problems = error.errors(include_input=False, include_url=False)
    said = sorted({f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in problems})
    # scim2-models names its own kinds (scim_invalidFilter, scim_invalidPath, ...).
    kinds = [
        str(e["type"]).removeprefix("scim_") for e in problems if e["type"].startswith("scim_")
    ]
    return scim_error(400, "; ".join(said), kinds[0] if kinds else "invalidValue")


def install(bp: Blueprint) -> None:
    """Make every answer of ``bp`` that is an error SCIM's kind of error."""
    bp.register_error_handler(SCIMException, _scim_exception)
    bp.register_error_handler(ValidationError, _validation_error)
    bp.after_request(_from_problem)
