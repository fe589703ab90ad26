"""Who is calling, and signing in: sessions with access and refresh tokens."""

from typing import Annotated, Literal

from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import Field, RootModel

from app.api.common import json_response, operation_id_for, page_response, problems
from app.db.session import autocommit, run_db, transaction
from app.errors import UnauthorizedError
from app.schemas.common import OutputModel
from app.schemas.sessions import (
    SessionCreate,
    SessionListQuery,
    SessionPage,
    SessionPath,
    SessionRefresh,
    Tokens,
)
from app.services import passwords, sessions
from app.services.api_keys import KeyInfo
from app.web import rate_limits
from app.web.admission import takes_turns
from app.web.auth import current_principal, current_session, public, requires
from app.web.responses import Response

bp = APIBlueprint(
    "auth",
    __name__,
    url_prefix="/auth",
    abp_tags=[Tag(name="auth")],
    operation_id_callback=operation_id_for,
)


class KeyWhoAmI(OutputModel):
    """The calling API key (never its secret)."""

    kind: Literal["api_key"] = "api_key"
    name: str
    prefix: str
    scopes: list[str]


class UserWhoAmI(OutputModel):
    """The signed-in user calling, and the session of the access token."""

    kind: Literal["user"] = "user"
    user_id: int
    username: str
    session_id: int
    scopes: list[str]


class WhoAmI(RootModel[Annotated[KeyWhoAmI | UserWhoAmI, Field(discriminator="kind")]]):
    """The API key, or the signed-in user, that made the request."""


@bp.get("/whoami", responses={200: WhoAmI})
@requires()
async def get_whoami() -> Response:
    """Describe the API key or the signed-in user that made this request."""
    principal = current_principal()
    if isinstance(principal, KeyInfo):
        return json_response(KeyWhoAmI.model_validate(principal))
    return json_response(
        UserWhoAmI(
            user_id=principal.user_id,
            username=principal.username,
            session_id=principal.id,
            scopes=list(principal.scopes),
        )
    )


def _sign_in_refused() -> UnauthorizedError:
    # One answer for unknown user, wrong password, no password and deactivated user.
    return UnauthorizedError("The username or password is wrong.")


def _tokens(issued: sessions.Issued, status: int) -> Response:
    return json_response(
        Tokens(
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            expires_in=issued.expires_in,
            session_id=issued.session_id,
        ),
        status,
        {"Cache-Control": "no-store"},
    )


@bp.post("/sessions", responses={201: Tokens, **problems(400, 401, 413, 415, 422, 429, 503)})
@public
@takes_turns
async def create_session(body: SessionCreate) -> Response:
    """Sign in with a username (or email) and password: a new session's tokens."""
    # Before any lookup or hashing: a refused attempt costs neither. Nor does one past the
    # hashing's admission (a 503): under a flood of 16 clients, most are.
    rate_limits.count_sign_in(body.username)
    with passwords.hashing.admit() as admission:
        async with autocommit():
            account = await run_db(sessions.find_account, body.username)
        stored = account.password_hash if account is not None else None
        # Verified whatever the account (a dummy hash without one): every refusal as long.
        ok, new_hash = await admission.run(passwords.verify_and_update, body.password, stored)
    if not ok or account is None or not account.active:
        raise _sign_in_refused()
    async with transaction():
        issued = await run_db(sessions.start_session, account.id, new_hash)
    return _tokens(issued, 201)


@bp.post("/sessions/refresh", responses={200: Tokens, **problems(400, 401, 413, 415, 422)})
@public
async def refresh_session(body: SessionRefresh) -> Response:
    """Trade a refresh token (once) for a new pair; a spent one revokes its session."""
    async with transaction():
        result = await run_db(sessions.refresh_session, body.refresh_token)
    if isinstance(result, sessions.Refused):
        raise UnauthorizedError("The refresh token is not valid (spent, expired or revoked).")
    return _tokens(result, 200)


@bp.get("/sessions", responses={200: SessionPage, **problems(400, 403)})
@requires()
async def list_sessions(query: SessionListQuery) -> Response:
    """List the signed-in user's live sessions, newest first."""
    me = current_session()
    async with autocommit():
        rows, cursor = await run_db(sessions.list_sessions, me.user_id, query)
    return page_response((sessions.session_item(row, me.id) for row in rows), cursor)


@bp.delete("/sessions/current", responses={204: None, **problems(403)})
@requires()
async def delete_current_session() -> Response:
    """Sign out: revoke the session of this request's access token."""
    me = current_session()
    async with transaction():
        await run_db(sessions.revoke_session, me.user_id, me.id)
    return Response(status=204)


@bp.delete("/sessions/<id:session_id>", responses={204: None, **problems(403, 404)})
@requires()
async def delete_session(path: SessionPath) -> Response:
    """Revoke one of the signed-in user's own sessions (another's is not found)."""
    me = current_session()
    async with transaction():
        await run_db(sessions.revoke_session, me.user_id, path.session_id)
    return Response(status=204)
