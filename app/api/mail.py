"""The flows that mail a link: invitation, password reset, change of address, sign-up.

Every request here writes at most its change and one queued message, in one transaction;
the worker sends the mail (app/services/mail.py). The token-spending operations are public:
the token is the credential, and every wrong one is the same 400 problem.
"""

from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import json_response, operation_id_for, page_response, problems
from app.config import current_settings
from app.db.session import autocommit, run_db, transaction
from app.errors import ConflictError, NotFoundError
from app.schemas.mail import (
    Accepted,
    EmailVerificationConfirm,
    InvitationAccept,
    MailMessageListQuery,
    MailMessagePage,
    PasswordResetConfirm,
    PasswordResetRequest,
    SignupCreate,
)
from app.schemas.users import UserPath
from app.services import mail, mail_flows, passwords
from app.web import rate_limits
from app.web.admission import takes_turns
from app.web.auth import public, requires
from app.web.bodies import no_body
from app.web.responses import Response

bp = APIBlueprint(
    "mail",
    __name__,
    abp_tags=[Tag(name="mail")],
    operation_id_callback=operation_id_for,
)


def _accepted() -> Response:
    # One body for every 202 here, whatever was (or was not) queued.
    return json_response(Accepted(), 202)


@bp.post("/users/<id:user_id>/invitation", responses={202: Accepted, **problems(400, 403, 404)})
@requires("users:admin")
@no_body
async def invite_user(path: UserPath) -> Response:
    """Mail the user a single-use link that sets their password (an invitation)."""
    async with transaction():
        await run_db(mail_flows.invite, path.user_id)
    return _accepted()


@bp.post("/auth/invitations/accept", responses={204: None, **problems(400, 413, 415, 422, 503)})
@public
@takes_turns
async def accept_invitation(body: InvitationAccept) -> Response:
    """Set the first password with an invitation's token (once); 400 if it is not valid."""
    await _set_password(body.token, "invitation", body.password, "password")
    return Response(status=204)


@bp.post("/auth/password-reset", responses={202: Accepted, **problems(400, 413, 415, 422, 429)})
@public
async def request_password_reset(body: PasswordResetRequest) -> Response:
    """Mail a reset link to the account of this address: 202 whether or not there is one."""
    rate_limits.count_mail(body.email)
    async with transaction():
        await run_db(mail_flows.request_reset, body.email)
    return _accepted()


@bp.post("/auth/password-reset/confirm", responses={204: None, **problems(400, 413, 415, 422, 503)})
@public
@takes_turns
async def confirm_password_reset(body: PasswordResetConfirm) -> Response:
    """Set a new password with a reset's token (once); every session of the user ends."""
    await _set_password(body.token, "password_reset", body.new_password, "new_password")
    return Response(status=204)


async def _set_password(token: str, purpose: str, password: str, field: str) -> None:
    new = passwords.checked_password(password, field)
    async with autocommit():
        await run_db(mail.check, token, (purpose,))  # a made-up token: 400, no hashing
    new_hash = await passwords.hashing.run(passwords.hash_password, new)
    async with transaction():
        await run_db(mail_flows.set_password, token, purpose, new_hash)


@bp.post(
    "/auth/email-verification/confirm", responses={204: None, **problems(400, 409, 413, 415, 422)}
)
@public
async def confirm_email(body: EmailVerificationConfirm) -> Response:
    """Confirm an address with its token (once): a change of address takes effect (the old
    address is told), or a signed-up account becomes active."""
    async with transaction():
        await run_db(mail_flows.confirm_email, body.token)
    return Response(status=204)


@bp.post(
    "/auth/signup", responses={202: Accepted, **problems(400, 404, 409, 413, 415, 422, 429, 503)}
)
@public
@takes_turns
async def sign_up(body: SignupCreate) -> Response:
    """Create an account (SIGNUP=open only, else 404), active once its address confirms.

    A taken address answers the same 202 (its owner is mailed a notice instead), so the
    answer does not tell which addresses have accounts; a taken username is a 409.
    """
    if current_settings().SIGNUP != "open":
        raise NotFoundError("Sign-up is closed: an administrator invites new users.")
    rate_limits.count_mail(body.email)
    new = passwords.checked_password(body.password)
    new_hash = await passwords.hashing.run(passwords.hash_password, new)
    try:
        async with transaction():
            await run_db(mail_flows.sign_up, body.username, body.email, new_hash)
    except ConflictError as conflict:
        if conflict.extensions.get("field") != "email":
            raise
        async with transaction():
            await run_db(mail_flows.tell_taken, body.email)
    return _accepted()


@bp.get("/mail-messages", responses={200: MailMessagePage, **problems(400, 403)})
@requires("users:admin")
async def list_mail_messages(query: MailMessageListQuery) -> Response:
    """List queued mail and its delivery state, newest first (optionally of one state)."""
    async with autocommit():
        rows, cursor = await run_db(mail.list_messages, query)
    return page_response((row._asdict() for row in rows), cursor)
