"""Request and response bodies and parameters of the users resource."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints, field_validator, model_validator

from app.models.user import EMAIL_MAX, USERNAME_MAX
from app.schemas.common import InputModel, OutputModel, Page, ParameterModel

# No leading/trailing whitespace and no control characters anywhere.
_USERNAME_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"

Username = Annotated[
    str, StringConstraints(min_length=1, max_length=USERNAME_MAX, pattern=_USERNAME_PATTERN)
]
Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX)]
UserSort = Literal["id", "-id", "created_at", "-created_at", "username", "-username"]


class UserCreate(InputModel):
    """Body of POST /users."""

    username: Username
    email: Email


class UserUpdate(InputModel):
    """Body of PATCH and PUT /users/{id}: omitted fields stay as they are."""

    username: Username | None = None
    email: Email | None = None

    @field_validator("username", "email", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            msg = "may be omitted but not null"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> "UserUpdate":
        if not self.model_fields_set:
            msg = "give at least one of: username, email"
            raise ValueError(msg)
        return self


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


class UserListQuery(ParameterModel):
    """Query string of GET /users."""

    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(
        default=None, max_length=512, description="next_cursor of the previous page, as given."
    )
    sort: UserSort = "id"
    username: str | None = Field(
        default=None, max_length=USERNAME_MAX, description="Exact, case-insensitive."
    )
    email: str | None = Field(
        default=None, max_length=EMAIL_MAX, description="Exact, case-insensitive."
    )
