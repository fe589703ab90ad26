"""Request and response bodies and parameters of the users resource."""

from datetime import datetime
from typing import Annotated, Literal

from flask_openapi3.models import RawModel
from pydantic import AfterValidator, Field, StrictBool, StringConstraints

from app.models.user import EMAIL_MAX, USERNAME_MAX
from app.schemas.common import (
    NAME_PATTERN,
    TEXT_PATTERN,
    InputModel,
    LineProblem,
    OutputModel,
    Page,
    PageQuery,
    ParameterModel,
    PartialUpdate,
    nfc,
    nfc_name,
)
from app.schemas.email import Email

# A username is stored and compared in NFC (nfc_name), and fits USERNAME_MAX both as sent and
# in NFC. Invisible characters are refused (NAME_PATTERN). Look-alikes are allowed: full-width
# letters, Cyrillic or Greek letters that look Latin, names mixing scripts. Real names mix
# scripts ("Мария-Ana", kanji with kana and Latin), a sound confusable check needs Unicode's
# confusables data (UTS #39), which Python does not ship, and NFKC folds only some of them
# while rewriting what people typed. A username identifies an account to the API's callers;
# it is not shown as proof of who someone is.
Username = Annotated[
    str,
    StringConstraints(min_length=1, max_length=USERNAME_MAX, pattern=NAME_PATTERN),
    nfc_name(USERNAME_MAX),
]
# Filters compare with stored values, which are in NFC (email-validator composes emails); one
# longer than a stored value can be once in NFC simply finds nothing.
UsernameFilter = Annotated[
    str, StringConstraints(max_length=USERNAME_MAX, pattern=TEXT_PATTERN), AfterValidator(nfc)
]
EmailFilter = Annotated[
    str, StringConstraints(max_length=EMAIL_MAX, pattern=TEXT_PATTERN), AfterValidator(nfc)
]
# A search text: as long as the longest email, in NFC like the stored values.
SearchText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=EMAIL_MAX, pattern=TEXT_PATTERN),
    AfterValidator(nfc),
]
UserSort = Literal["id", "-id", "created_at", "-created_at", "username", "-username"]


class UserCreate(InputModel):
    """Body of POST /users."""

    EXAMPLES = ({"username": "davidchen", "email": "david@example.com"},)

    username: Username
    email: Email


class UserUpdate(PartialUpdate):
    """Body of PATCH and PUT /users/{id}: omitted fields stay as they are."""

    EXAMPLES = ({"email": "david.chen.updated@example.com"},)

    username: Username | None = None
    email: Email | None = None
    # Strict: the document says boolean, and lax mode took 0 and 1 (the contract fuzz sent 0).
    active: StrictBool | None = Field(
        default=None,
        description="users:admin only. false: deactivate (sign-in refused, every session "
        "revoked at once); true: reactivate.",
    )


class MeUpdate(PartialUpdate):
    """Body of PATCH /me: omitted fields stay as they are."""

    EXAMPLES = ({"email": "david.chen.updated@example.com"},)

    username: Username | None = None
    email: Email | None = None


class UserRead(OutputModel):
    """A user as the API returns it."""

    id: int
    username: str
    email: str
    active: bool = Field(description="False: deactivated by an admin; cannot sign in.")
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
    username: UsernameFilter | None = Field(
        default=None,
        description="Exact, case-insensitive.",
    )
    email: EmailFilter | None = Field(
        default=None,
        description="Exact, case-insensitive.",
    )
    q: SearchText | None = Field(
        default=None,
        description=(
            "Users whose username or email contains this text, whatever its letter case "
            "(a prefix is a case of it). Combines with the other filters, sorts and cursors."
        ),
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
