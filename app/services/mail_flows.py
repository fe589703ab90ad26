"""The flows that mail a link: invitation, password reset, change of address, sign-up.

Each request's part runs in the view's unit of work: the change (if any), its event and the
queued message commit together (app/services/mail.py sends it later, from the worker).
"""

from typing import cast

from sqlalchemy import Table, insert, select, update

from app.db.session import db
from app.errors import NotFoundError
from app.models import User
from app.schemas.common import Versions
from app.schemas.users import MeUpdate, UserUpdate
from app.services import events, sessions, users
from app.services import mail as outbox_mail

_users = cast(Table, User.__table__)


def invite(user_id: int) -> None:
    """Queue the invitation of a user (a link that sets their password), or NotFoundError."""
    found = db.session.execute(
        select(_users.c.email).where(_users.c.id == user_id)
    ).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"User {user_id} does not exist.")
    outbox_mail.queue(outbox_mail.INVITATION, found, user_id)
    events.record("user.invited", "user", user_id)


def request_reset(email: str) -> None:
    """Queue a reset for whatever address: the worker resolves it (the same work for all)."""
    outbox_mail.queue(outbox_mail.PASSWORD_RESET, email, None)


def set_password(token: str, purpose: str, password_hash: str) -> None:
    """Spend an invitation's or a reset's token: the new password, every session revoked."""
    spent = outbox_mail.spend(token, (purpose,))
    users.set_password_hash(spent.user_id, password_hash)
    sessions.revoke_user_sessions(spent.user_id)


def request_email_change(user_id: int, email: str) -> None:
    """Queue the confirmation of a new address to that address; the old one stays till then."""
    outbox_mail.queue(outbox_mail.EMAIL_VERIFICATION, email, user_id, {"email": email})


def update_by_user(
    user_id: int, body: MeUpdate | UserUpdate, versions: Versions
) -> users.VersionedUserRow:
    """A user's change of their own record: the rest is written, a new email only queued
    for confirmation by that address (the response still shows the old one). Run in a
    transaction: the write and the queued mail are two statements."""
    fields = body.model_dump(exclude_unset=True)
    email = fields.pop("email", None)
    rest = type(body).model_construct(_fields_set=set(fields), **fields)
    user = users.update_user(user_id, rest, versions)
    if email is not None and email.lower() != user.email.lower():
        request_email_change(user_id, email)
    return user


def confirm_email(token: str) -> None:
    """Spend a change of address's token (the address changes; the old one is told) or a
    sign-up's (the account becomes active)."""
    spent = outbox_mail.spend(token, ("email", "signup"))
    if spent.purpose == "signup":
        db.session.execute(update(_users).where(_users.c.id == spent.user_id).values(active=True))
        events.record("user.email_verified", "user", spent.user_id)
        return
    old = users.get_user(spent.user_id).email
    # A ConflictError (409) if the address became another's meanwhile: the token is not spent.
    users.update_user(spent.user_id, MeUpdate(email=spent.email))
    outbox_mail.queue(outbox_mail.EMAIL_CHANGED, old, spent.user_id, {"email": spent.email})


def sign_up(username: str, email: str, password_hash: str) -> None:
    """Create an account, inactive until its address confirms, and queue that mail."""
    stmt = (
        insert(_users)
        .values(username=username, email=email, password_hash=password_hash, active=False)
        .returning(_users.c.id)
    )
    with users.unique_violations_as_conflicts():
        user_id: int = db.session.execute(stmt).scalar_one()
    changes: events.Changes = {
        "username": [None, username],
        "email": [None, email],
        "active": [None, False],
    }
    events.record("user.created", "user", user_id, changes)
    outbox_mail.queue(outbox_mail.SIGNUP, email, user_id)


def tell_taken(email: str) -> None:
    """Queue the notice a sign-up with a taken address sends to that address."""
    outbox_mail.queue(outbox_mail.SIGNUP_EXISTS, email, None)
