"""Request and response bodies and parameters of sign-in and sessions."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.schemas.common import (
    TEXT_PATTERN,
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    ParameterModel,
)

# What a sign-in takes: no rule of a new password applies (one set before a rule changed still
# signs in), only a bound on the work a body can ask for.
PASSWORD_INPUT_MAX = 1024
# What a new password must be, checked by app/services/passwords.py (whose 422 names the
# rule broken): said here for the document, since no schema keyword can say it.
RULES_OF_A_NEW_ONE = (
    "8 to 128 characters, counted after Unicode NFC; not one of the common passwords the "
    "server ships. A refused one is a 422 whose error type names the rule: "
    "password_too_short, password_too_long or password_common."
)
LOGIN_MAX = 254  # the longer of a username (80) and an email (254)


class SessionCreate(InputModel):
    """Body of POST /auth/sessions: sign in."""

    EXAMPLES = ({"username": "davidchen", "password": "correct horse battery staple"},)

    username: str = Field(
        min_length=1,
        max_length=LOGIN_MAX,
        pattern=TEXT_PATTERN,
        description="The username or the email, in any letter case.",
    )
    password: str = Field(max_length=PASSWORD_INPUT_MAX, pattern=TEXT_PATTERN)


class SessionRefresh(InputModel):
    """Body of POST /auth/sessions/refresh."""

    EXAMPLES = ({"refresh_token": "umr_" + "A" * 43},)

    refresh_token: str = Field(max_length=256, pattern=TEXT_PATTERN)


class Tokens(OutputModel):
    """A new pair of tokens; the refresh token works once."""

    access_token: str = Field(description="uma_...: Authorization: Bearer <access_token>.")
    refresh_token: str = Field(description="umr_...: POST /auth/sessions/refresh, once.")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name, no secret
    expires_in: int = Field(description="Seconds the access token works.")
    session_id: int


class SessionRead(OutputModel):
    """One of the caller's sessions (never its tokens)."""

    id: int
    created_at: datetime
    refreshed_at: datetime | None
    last_used_at: datetime | None
    refresh_expires_at: datetime
    current: bool = Field(description="Whether this request's access token belongs to it.")


SessionPage = Page[SessionRead]


class SessionListQuery(PageQuery):
    """Query string of GET /auth/sessions (newest first)."""


class SessionPath(ParameterModel):
    """Path of /auth/sessions/{session_id}."""

    location = "path"
    session_id: int = Field(ge=1)


class PasswordChange(InputModel):
    """Body of PUT /me/password: the password now, and the new one (the rules apply to it)."""

    EXAMPLES = (
        {
            "current_password": "correct horse battery staple",
            "new_password": "a new and longer passphrase",
        },
    )

    current_password: str = Field(max_length=PASSWORD_INPUT_MAX, pattern=TEXT_PATTERN)
    new_password: str = Field(
        max_length=PASSWORD_INPUT_MAX, pattern=TEXT_PATTERN, description=RULES_OF_A_NEW_ONE
    )


class PasswordSet(InputModel):
    """Body of PUT /users/{id}/password: an admin sets a user's password (the rules apply)."""

    EXAMPLES = ({"new_password": "a new and longer passphrase"},)

    new_password: str = Field(
        max_length=PASSWORD_INPUT_MAX, pattern=TEXT_PATTERN, description=RULES_OF_A_NEW_ONE
    )
