"""The one place that turns every error into an application/problem+json response (RFC 9457).

Registered by app.web.pipeline; a failed request's session work is rolled back here, before
the error leaves the app.
"""

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from app.db.failures import DATABASE_ERRORS, database_error_kind, describe
from app.db.session import db
from app.errors import PROBLEM_MIMETYPE, AppError, ServiceUnavailableError, WriteConflictError
from app.web import responses

log = logging.getLogger(__name__)


def problem(
    status: int,
    detail: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """Build an application/problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **(extensions or {}),
    }
    response = responses.Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    response.headers.extend(headers)
    return response


# SCIM (RFC 7644 3.12) has its own error schema and content type: under its prefix, every
# problem (the pipeline's 401, 403, 404, 405, 413, 429 and 503 included) is rewritten into it
# with the same status, detail and headers. 422 is not SCIM's: a body that failed validation
# is a 400 invalidValue there.
SCIM_PREFIX = "/scim/v2"
SCIM_MIMETYPE = "application/scim+json"
SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
_SCIM_TYPES = {HTTPStatus.CONFLICT: "uniqueness"}


def scim_error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    """SCIM's error schema (RFC 7644 3.12): also a failed bulk operation's response."""
    body: dict[str, Any] = {"schemas": [SCIM_ERROR_SCHEMA], "status": str(status)}
    if scim_type is not None:
        body["scimType"] = scim_type
    body["detail"] = detail
    return body


def scim_error(
    status: int,
    detail: str,
    scim_type: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """An error in SCIM's schema."""
    body = scim_error_body(status, detail, scim_type)
    response = responses.Response(json.dumps(body), status=status, mimetype=SCIM_MIMETYPE)
    response.headers.extend(headers)
    return response


def scim_errors(response: Response) -> Response:
    """Under SCIM's prefix, a problem+json answer as SCIM's error (an after-request hook)."""
    if response.mimetype != PROBLEM_MIMETYPE or not request.path.startswith(SCIM_PREFIX + "/"):
        return response
    problem = json.loads(response.get_data())
    status = response.status_code
    scim_type = _SCIM_TYPES.get(HTTPStatus(status))
    if status in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY} and problem.get(
        "errors"
    ):
        scim_type = "invalidValue"
    kept = [(k, v) for k, v in response.headers if k.lower() not in _BODY_HEADERS]
    status = HTTPStatus.BAD_REQUEST if status == HTTPStatus.UNPROCESSABLE_ENTITY else status
    return scim_error(status, str(problem.get("detail", "")), scim_type, kept)


_BODY_HEADERS = frozenset({"content-type", "content-length"})


def _rollback() -> None:
    # The failed request's work must not reach a later commit; the database may be gone too.
    try:
        db.session.rollback()
    except sa_exc.SQLAlchemyError:
        log.warning("rollback after a failed request also failed", exc_info=True)


def _handle_app_error(error: AppError) -> Response:
    _rollback()
    return problem(error.status, error.detail, headers=error.headers, extensions=error.extensions)


def _handle_http_exception(error: HTTPException) -> Response:
    _rollback()
    original = error.get_response()
    status = error.code or original.status_code
    # Keep headers such as Allow (405) and Retry-After; the body is replaced.
    kept = [
        (k, v) for k, v in original.headers if k.lower() not in {"content-type", "content-length"}
    ]
    detail = error.description or HTTPStatus(status).description
    return problem(status, detail, headers=kept)


def _handle_database_error(error: Exception) -> Response:
    kind = database_error_kind(error)
    if kind == "fault":
        return _handle_unexpected(error)
    _rollback()
    if kind == "conflict":
        log.warning("write conflict: %s", describe(error))
        return _handle_app_error(WriteConflictError())
    # One line, not the chained traceback: an outage of seconds must not write megabytes.
    log.error("database unavailable: %s", describe(error))
    unavailable = ServiceUnavailableError("The database is unavailable; try again later.")
    return _handle_app_error(unavailable)


def _handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return _handle_http_exception(error)
    _rollback()
    log.exception("unhandled error")
    return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "The server failed to complete the request.")


def register_error_handlers(app: Flask) -> None:
    """Make every error a problem+json response."""
    app.register_error_handler(AppError, _handle_app_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    # Driver errors of both paths (SQLAlchemy's and asyncpg's), and refused or timed-out
    # sockets: an outage is a 503, a write conflict a 409, anything else a 500.
    for error in DATABASE_ERRORS:
        app.register_error_handler(error, _handle_database_error)
    app.register_error_handler(Exception, _handle_unexpected)
