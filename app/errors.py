"""Application errors and the one place that turns every error into problem+json (RFC 9457)."""

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from flask import Flask, Response, json
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from app.db.failures import DATABASE_ERRORS, database_error_kind, describe
from app.db.session import db

log = logging.getLogger(__name__)


PROBLEM_MIMETYPE = "application/problem+json"


class AppError(Exception):
    """An error with an HTTP status, safe to show to the client."""

    status: ClassVar[int] = HTTPStatus.INTERNAL_SERVER_ERROR
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class BadRequestError(AppError):
    """The request is malformed (bad JSON, query string or cursor)."""

    status = HTTPStatus.BAD_REQUEST


class UnauthorizedError(AppError):
    """No usable API key; one wording for every cause, so none can be told apart."""

    status = HTTPStatus.UNAUTHORIZED
    headers = (("WWW-Authenticate", 'Bearer realm="api"'),)


class ForbiddenError(AppError):
    """The key is valid but lacks a scope the operation needs."""

    status = HTTPStatus.FORBIDDEN

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"The API key lacks the scope: {' '.join(missing)}.", scopes=missing)
        scope = " ".join(missing)
        self.headers = (
            (
                "WWW-Authenticate",
                f'Bearer realm="api", error="insufficient_scope", scope="{scope}"',
            ),
        )


class NotFoundError(AppError):
    """The resource does not exist."""

    status = HTTPStatus.NOT_FOUND


class ConflictError(AppError):
    """A uniqueness rule would be broken; names the field."""

    status = HTTPStatus.CONFLICT

    def __init__(self, field: str) -> None:
        super().__init__(f"A resource with this {field} already exists.", field=field)


class PreconditionFailedError(AppError):
    """If-Match names no current version of the resource: it changed since it was read."""

    status = HTTPStatus.PRECONDITION_FAILED

    def __init__(self, what: str) -> None:
        super().__init__(
            f"The {what} changed since the ETag in If-Match was read; nothing was changed. "
            "GET it again, then retry with its new ETag."
        )


class UnsupportedMediaTypeError(AppError):
    """The body is not JSON."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class NotAcceptableError(AppError):
    """No representation the client accepts."""

    status = HTTPStatus.NOT_ACCEPTABLE


class UnprocessableError(AppError):
    """Well-formed input that fails validation."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


# How long a client should wait before trying a 503 again: outages we see end in about a
# second (a restart, a failover, a lock released); a longer wait would only add latency.
RETRY_AFTER_SECONDS = 1


class ServiceUnavailableError(AppError):
    """A dependency (the database) cannot be reached, or missed its deadline."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    headers = (("Retry-After", str(RETRY_AFTER_SECONDS)),)


class WriteConflictError(AppError):
    """A concurrent write (deadlock, serialization failure) that retrying did not resolve."""

    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__(
            "A concurrent write conflicted with this one and nothing was changed; retry it."
        )


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
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    response.headers.extend(headers)
    return response


def validation_errors(error: ValidationError, location: str) -> list[dict[str, Any]]:
    """List pydantic errors without the submitted values (they may hold secrets)."""
    return [
        {"loc": [location, *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]


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
