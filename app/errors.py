"""Application errors: what a service raises, each with its HTTP status and safe detail.

No Flask, no database: the serving runtime (app.server) and the services import this; the
one handler that turns errors into problem+json is app.web.problems.
"""

from http import HTTPStatus
from typing import Any, ClassVar

from pydantic import ValidationError

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
    """The credential is valid but lacks a scope the operation needs (or is of the wrong kind)."""

    status = HTTPStatus.FORBIDDEN

    def __init__(self, missing: list[str], detail: str | None = None) -> None:
        detail = detail or f"The credential lacks the scope: {' '.join(missing)}."
        super().__init__(detail, scopes=missing)
        if not missing:
            return  # the wrong kind of credential, not a scope short
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


class NotReadyError(ServiceUnavailableError):
    """GET /readyz: the database cannot serve this release; ``reason`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)


class WriteConflictError(AppError):
    """A concurrent write (deadlock, serialization failure) that retrying did not resolve."""

    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__(
            "A concurrent write conflicted with this one and nothing was changed; retry it."
        )


def validation_errors(error: ValidationError, location: str) -> list[dict[str, Any]]:
    """List pydantic errors without the submitted values (they may hold secrets)."""
    return [
        {"loc": [location, *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]
