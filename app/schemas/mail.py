"""Request and response bodies of the flows that mail a link (app/api/mail.py)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.schemas.common import TEXT_PATTERN, InputModel, OutputModel, Page, PageQuery
from app.schemas.email import Email
from app.schemas.sessions import PASSWORD_INPUT_MAX, RULES_OF_A_NEW_ONE
from app.schemas.users import Username

# A mailed token is 43 characters (32 random bytes, URL-safe base64); room, not a format
# check: a wrong one is the same 400 as a spent one.
TOKEN_MAX = 128
_TOKEN = Field(min_length=1, max_length=TOKEN_MAX, pattern=TEXT_PATTERN)
_EXAMPLE_TOKEN = "gX1b" * 10 + "abc"


class Accepted(OutputModel):
    """The request is taken: a mail follows, if there is one to send."""

    status: Literal["accepted"] = "accepted"


class InvitationAccept(InputModel):
    """Body of POST /auth/invitations/accept: the mailed token and the first password."""

    EXAMPLES = ({"token": _EXAMPLE_TOKEN, "password": "a new and longer passphrase"},)

    token: str = _TOKEN
    password: str = Field(
        max_length=PASSWORD_INPUT_MAX, pattern=TEXT_PATTERN, description=RULES_OF_A_NEW_ONE
    )


class PasswordResetRequest(InputModel):
    """Body of POST /auth/password-reset: the account's address."""

    EXAMPLES = ({"email": "david.chen@example.com"},)

    email: Email


class PasswordResetConfirm(InputModel):
    """Body of POST /auth/password-reset/confirm: the mailed token and the new password."""

    EXAMPLES = ({"token": _EXAMPLE_TOKEN, "new_password": "a new and longer passphrase"},)

    token: str = _TOKEN
    new_password: str = Field(
        max_length=PASSWORD_INPUT_MAX, pattern=TEXT_PATTERN, description=RULES_OF_A_NEW_ONE
    )


class EmailVerificationConfirm(InputModel):
    """Body of POST /auth/email-verification/confirm: the mailed token."""

    EXAMPLES = ({"token": _EXAMPLE_TOKEN},)

    token: str = _TOKEN


class SignupCreate(InputModel):
    """Body of POST /auth/signup: a new account, inactive until its address confirms."""

    EXAMPLES = (
        {
            "username": "davidchen",
            "email": "david.chen@example.com",
            "password": "correct horse battery staple",
        },
    )

    username: Username
    email: Email
    password: str = Field(
        max_length=PASSWORD_INPUT_MAX, pattern=TEXT_PATTERN, description=RULES_OF_A_NEW_ONE
    )


class MailMessageRead(OutputModel):
    """One queued message and its delivery (never a token: none is stored in clear)."""

    id: int
    kind: str = Field(description="invitation, password_reset, email_verification, ...")
    recipient: str
    user_id: int | None
    state: Literal["pending", "sent", "failed"] = Field(
        description="pending: waiting for an attempt (or a retry); sent; failed: given up."
    )
    attempts: int
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    created_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None


MailMessagePage = Page[MailMessageRead]


class MailMessageListQuery(PageQuery):
    """Query string of GET /mail-messages (newest first)."""

    state: Literal["pending", "sent", "failed"] | None = None
