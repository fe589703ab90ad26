"""Request and response bodies and parameters of the users resource."""

from datetime import datetime
from typing import Annotated, Literal

from flask_openapi3.models import RawModel
from pydantic import Field, StringConstraints

from app.models.user import EMAIL_MAX, USERNAME_MAX
from app.schemas.common import (
    TEXT_PATTERN,
    TRIMMED_LINE_PATTERN,
    InputModel,
    LineProblem,
    OutputModel,
    Page,
    PageQuery,
    ParameterModel,
    PartialUpdate,
)
from app.schemas.email import Email

Username = Annotated[
    str, StringConstraints(min_length=1, max_length=USERNAME_MAX, pattern=TRIMMED_LINE_PATTERN)
]
UserSort = Literal["id", "-id", "created_at", "-created_at", "username", "-username"]


class UserCreate(InputModel):
    """Body of POST /users."""

    username: Username
    email: Email


class UserUpdate(PartialUpdate):
    """Body of PATCH and PUT /users/{id}: omitted fields stay as they are."""

    username: Username | None = None
    email: Email | None = None


class UserRead(OutputModel):
    """A user as the API returns it."""

    id: int
    username: str
    email: str
    created_at: datetime
    updated_at: datetime


class UserPage(Page[UserRead]):
    """A page of users."""


class UserPath(ParameterModel):
    """Path of /users/{user_id}."""

    location = "path"
    user_id: int = Field(ge=1)


class UserListQuery(PageQuery):
    """Query string of GET /users."""

    sort: UserSort = Field(
        default="id", description="username orders ignore letter case: alice, Bob, carol."
    )
    username: str | None = Field(
        default=None,
        max_length=USERNAME_MAX,
        pattern=TEXT_PATTERN,
        description="Exact, case-insensitive.",
    )
    email: str | None = Field(
        default=None,
        max_length=EMAIL_MAX,
        pattern=TEXT_PATTERN,
        description="Exact, case-insensitive.",
    )


class ImportQuery(ParameterModel):
    """Query string of POST /users/import."""

    on_conflict: Literal["error", "skip"] = Field(
        default="error",
        description=(
            "error: all or nothing, one transaction; any invalid or duplicate row writes "
            "nothing. skip: valid new rows are written; the others are reported by line."
        ),
    )


class ImportBody(RawModel):
    """A streamed file of users: NDJSON (one UserCreate object a line) or CSV (a header
    naming username and email, then one user a row)."""

    mimetypes = ["application/x-ndjson", "text/csv"]  # noqa: RUF012 - flask-openapi3 reads it


class ImportResult(OutputModel):
    """The outcome of an import: rows written, rows skipped, the first problems by line."""

    created: int
    skipped: int
    errors: list[LineProblem]
