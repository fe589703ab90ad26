"""Mail: queued in the transaction of what causes it, rendered and sent by the worker.

A request only writes a ``mail_message`` row (kind, recipient, the user, non-secret data).
The worker (app/worker/mail.py) claims it, then, in one short transaction, issues the
link's token and renders the templates; it sends outside any transaction, then settles the
row. So no token is ever stored in clear, not even in the outbox: only its SHA-256 hash, in
``mail_token`` (256 random bits: a plain hash is right, as api_keys.hash_secret says). A
retry issues a new token, superseding the one of the failed attempt.

A password reset's request writes the same one row whatever the address (the worker looks
the address up, and drops the row of an unknown one): the answer, and its time, cannot tell
a known address from an unknown one, and nothing is sent to an unknown one.

Tokens: one live row per user and purpose (a unique index), which a newer token overwrites,
so an older one is superseded by construction; spending is one conditional UPDATE (unused,
unexpired, this purpose), checked by its rowcount, so of two concurrent uses one wins.
"""

import functools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import Connection, Row, Table, insert, select, true, update

from app.config import Settings
from app.db.session import db
from app.db.types import folded, utcnow
from app.errors import BadRequestError
from app.models import MailMessage, MailToken, User
from app.schemas.mail import MailMessageListQuery
from app.services.api_keys import hash_secret
from app.services.pagination import SortKey, next_cursor, paginate

_messages = cast(Table, MailMessage.__table__)
_tokens = cast(Table, MailToken.__table__)
_users = cast(Table, User.__table__)

# Kinds of message (each a pair of templates) and the token purpose and link page of those
# that carry a link with a token.
INVITATION: Final = "invitation"
PASSWORD_RESET: Final = "password_reset"  # noqa: S105 - a kind of mail, no secret
EMAIL_VERIFICATION: Final = "email_verification"
SIGNUP: Final = "signup"
EMAIL_CHANGED: Final = "email_changed"
SIGNUP_EXISTS: Final = "signup_exists"
KINDS = (INVITATION, PASSWORD_RESET, EMAIL_VERIFICATION, SIGNUP, EMAIL_CHANGED, SIGNUP_EXISTS)
# kind: (token purpose, the front end's page the link opens)
_LINKS: dict[str, tuple[str, str]] = {
    INVITATION: ("invitation", "/invitation"),
    PASSWORD_RESET: ("password_reset", "/password-reset"),
    EMAIL_VERIFICATION: ("email", "/email-verification"),
    SIGNUP: ("signup", "/email-verification"),
}
_SUBJECTS = {
    INVITATION: "You are invited: set your password",
    PASSWORD_RESET: "Reset your password",
    EMAIL_VERIFICATION: "Confirm your new email address",
    SIGNUP: "Confirm your email address",
    EMAIL_CHANGED: "Your email address was changed",
    SIGNUP_EXISTS: "You already have an account",
}


class InvalidTokenError(BadRequestError):
    """One answer for a token used, expired, superseded or never issued."""

    def __init__(self) -> None:
        super().__init__("The link is not valid: it was used, has expired or was replaced.")


def queue(
    kind: str, recipient: str, user_id: int | None, data: dict[str, Any] | None = None
) -> None:
    """Queue a message in the request session's current unit of work (it commits with it)."""
    db.session.connection().execute(
        insert(_messages).values(kind=kind, recipient=recipient, user_id=user_id, data=data or {})
    )


@dataclass(frozen=True)
class Spent:
    """Whose token was spent, for what, and the address it confirms (a change of address)."""

    user_id: int
    purpose: str
    email: str | None


def _usable(digest: str, purposes: tuple[str, ...], now: datetime) -> list[Any]:
    return [
        _tokens.c.token_hash == digest,
        _tokens.c.purpose.in_(purposes),
        _tokens.c.used_at.is_(None),
        _tokens.c.expires_at > now,
    ]


def check(token: str, purposes: tuple[str, ...]) -> None:
    """Raise InvalidTokenError unless the token could be spent now: asked before a new
    password is hashed, so a made-up token costs no Argon2 (~21 ms of CPU). Only spend()
    uses it, in one conditional UPDATE: two that pass this check cannot both spend it."""
    digest = hash_secret(token)
    found = db.session.execute(
        select(_tokens.c.user_id).where(*_usable(digest, purposes, datetime.now(UTC)))
    ).first()
    if found is None:
        raise InvalidTokenError


def spend(token: str, purposes: tuple[str, ...]) -> Spent:
    """Use the token once, in one conditional UPDATE, or raise InvalidTokenError."""
    digest = hash_secret(token)
    now = datetime.now(UTC)
    stmt = update(_tokens).where(*_usable(digest, purposes, now)).values(used_at=now)
    if db.session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTokenError
    # Read back by the hash (MariaDB has no UPDATE ... RETURNING); the row is ours, locked.
    row = db.session.execute(
        select(_tokens.c.user_id, _tokens.c.purpose, _tokens.c.email).where(
            _tokens.c.token_hash == digest
        )
    ).one()
    return Spent(row.user_id, row.purpose, row.email)


def issue(conn: Connection, user_id: int, purpose: str, ttl: timedelta, email: str | None) -> str:
    """A new token for the user and purpose, superseding the one before; stored hashed."""
    token = secrets.token_urlsafe(32)
    values = {
        "token_hash": hash_secret(token),
        "email": email,
        "expires_at": datetime.now(UTC) + ttl,
        "used_at": None,
        "created_at": utcnow(),
    }
    mine = (_tokens.c.user_id == user_id) & (_tokens.c.purpose == purpose)
    # Two workers sending two messages of one user and purpose at once may both insert: the
    # unique index refuses the second, whose attempt fails and is retried (a new token).
    if conn.execute(update(_tokens).where(mine).values(values)).rowcount == 0:
        conn.execute(insert(_tokens).values(user_id=user_id, purpose=purpose, **values))
    return token


@dataclass(frozen=True)
class Outgoing:
    """A rendered message, ready to send."""

    recipient: str
    subject: str
    text: str
    html: str


@functools.cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("app.services", "mail_templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render(kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """The subject, text and HTML of a kind of message (the package's templates)."""
    env, subject = _templates(), _SUBJECTS[kind]
    text = env.get_template(f"{kind}.txt").render(context, subject=subject)
    html = env.get_template(f"{kind}.html").render(context, subject=subject)
    return subject, text, html


def _recipient_user(conn: Connection, kind: str, row: Row[Any]) -> Row[*tuple[Any, ...]] | None:
    """The user the message is for, as sending it requires, or None: drop it."""
    columns = select(_users.c.id, _users.c.username, _users.c.email, _users.c.active)
    if kind == PASSWORD_RESET:
        # Resolved now, not at the request (the module's docstring says why).
        found = columns.where(folded(_users.c.email) == folded(row.recipient))
        return conn.execute(found.where(_users.c.active == true())).one_or_none()
    if row.user_id is None:
        return None
    user = conn.execute(columns.where(_users.c.id == row.user_id)).one_or_none()
    if user is None or (kind == SIGNUP) == bool(user.active):
        # Gone; or a sign-up already verified; or any other mail of a deactivated user.
        return None
    return user


def prepare(conn: Connection, message_id: int, settings: Settings) -> Outgoing | None:
    """Issue the message's token (if it carries a link) and render it; None when it must
    not be sent (an unknown or deactivated account). Call in a transaction on ``conn``."""
    row = conn.execute(select(_messages).where(_messages.c.id == message_id)).one()
    context: dict[str, Any] = {**row.data, "public_url": settings.PUBLIC_URL}
    recipient = row.recipient
    if row.kind not in (EMAIL_CHANGED, SIGNUP_EXISTS):
        user = _recipient_user(conn, row.kind, row)
        if user is None:
            return None
        context["username"] = user.username
        if row.kind in (INVITATION, PASSWORD_RESET):
            recipient = user.email  # the address as stored, however it was typed
        purpose, page = _LINKS[row.kind]
        ttl = timedelta(minutes=settings.MAIL_TOKEN_TTL)
        token = issue(conn, user.id, purpose, ttl, row.data.get("email"))
        context["link"] = f"{settings.PUBLIC_URL}{page}?{urlencode({'token': token})}"
        context["valid_minutes"] = settings.MAIL_TOKEN_TTL
    subject, text, html = render(row.kind, context)
    return Outgoing(recipient, subject, text, html)


MESSAGE_SORT = SortKey((MailMessage.id,), descending=True)
MESSAGE_COLUMNS = (
    _messages.c.id,
    _messages.c.kind,
    _messages.c.recipient,
    _messages.c.user_id,
    _messages.c.state,
    _messages.c.attempts,
    _messages.c.last_error,
    _messages.c.created_at,
    _messages.c.next_attempt_at,
    _messages.c.finished_at,
)


def list_messages(
    query: MailMessageListQuery,
) -> tuple[list[Row[*tuple[Any, ...]]], str | None]:
    """One page of queued messages, newest first, and the cursor of the next."""
    stmt = select(*MESSAGE_COLUMNS)
    if query.state is not None:
        stmt = stmt.where(_messages.c.state == query.state)
    stmt = paginate(stmt, MESSAGE_SORT, "-id", query.cursor, query.limit)
    rows = list(db.session.execute(stmt))
    return rows[: query.limit], next_cursor(rows, MESSAGE_SORT, "-id", query.limit)
