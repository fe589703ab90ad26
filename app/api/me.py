"""The signed-in user's own account: read it, change it, change its password.

An access token only (an API key has no user of its own: 403); no scope is needed, since a
user's own record is theirs whatever their groups grant.
"""

from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import item_response, operation_id_for, problems
from app.api.conditional import WriteCondition, etag, not_modified, unit_for, write_condition
from app.db.session import autocommit, run_db, transaction
from app.errors import UnprocessableError
from app.schemas.sessions import PasswordChange
from app.schemas.users import MeUpdate, UserRead
from app.services import mail_flows, passwords, sessions, users
from app.web import rate_limits
from app.web.auth import current_session, requires
from app.web.responses import Response

bp = APIBlueprint(
    "me",
    __name__,
    url_prefix="/me",
    abp_tags=[Tag(name="me")],
    operation_id_callback=operation_id_for,
)


def _user_response(user: users.VersionedUserRow) -> Response:
    return item_response(users.user_item(user), 200, {"ETag": etag(user.version)})


@bp.get("", responses={200: UserRead, **problems(403)})
@requires()
async def get_me() -> Response:
    """Get the signed-in user (304 where If-None-Match names its ETag)."""
    me = current_session()
    async with autocommit():
        user = await run_db(users.get_user, me.user_id)
    return not_modified("user", user.version) or _user_response(user)


def _update_me(user_id: int, body: MeUpdate, condition: WriteCondition) -> users.VersionedUserRow:
    versions = condition.versions(lambda: (users.get_user(user_id).version,))
    return mail_flows.update_by_user(user_id, body, versions)


@bp.patch("", responses={200: UserRead, **problems(400, 403, 409, 412, 413, 415, 422, 429)})
@requires()
async def update_me(body: MeUpdate) -> Response:
    """Change the signed-in user's username or email; omitted fields stay as they are.

    A new email takes effect only once it is confirmed: the response still shows the old
    one, and the new address is mailed a link (POST /auth/email-verification/confirm)."""
    me = current_session()
    condition = write_condition(1)
    if body.email is not None:
        rate_limits.count_mail(body.email)
    # With an email, the write and the queued mail are two statements: one transaction.
    async with transaction() if body.email is not None else unit_for(condition):
        user = await run_db(_update_me, me.user_id, body, condition)
    return _user_response(user)


def _wrong_current_password() -> UnprocessableError:
    error = {
        "loc": ["body", "current_password"],
        "msg": "it is not the password now.",
        "type": "password_wrong",
    }
    return UnprocessableError("The current_password is wrong.", errors=[error])


@bp.put("/password", responses={204: None, **problems(400, 403, 413, 415, 422, 503)})
@requires()
async def change_my_password(body: PasswordChange) -> Response:
    """Change the signed-in user's password; their other sessions are revoked."""
    me = current_session()
    new = passwords.checked_password(body.new_password, "new_password")
    async with autocommit():
        stored = await run_db(users.password_hash_of, me.user_id)
    ok, _ = await passwords.hashing.run(passwords.verify_and_update, body.current_password, stored)
    if not ok:
        raise _wrong_current_password()
    new_hash = await passwords.hashing.run(passwords.hash_password, new)
    async with transaction():
        await run_db(users.set_password_hash, me.user_id, new_hash)
        await run_db(sessions.revoke_user_sessions, me.user_id, me.id)
    return Response(status=204)
