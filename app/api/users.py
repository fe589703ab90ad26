"""HTTP views of the users resource: thin, async, one DB call each.

Every write here is one statement and its change event (app/services/events.py), so each
runs under ``events.write_unit()``: one transaction, committed when its block ends.
"""

from flask import request, stream_with_context, url_for
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import (
    item_response,
    json_response,
    operation_id_for,
    page_response,
    problems,
)
from app.api.conditional import (
    WriteCondition,
    etag,
    not_modified,
    unit_for,
    write_condition,
)
from app.api.idempotency import idempotent
from app.config import current_settings
from app.db.session import autocommit, run_db, run_db_in_worker, transaction
from app.errors import NotAcceptableError, UnsupportedMediaTypeError
from app.schemas.common import ImportProblem
from app.schemas.sessions import PasswordSet
from app.schemas.users import (
    ImportBody,
    ImportQuery,
    ImportResult,
    UserCreate,
    UserListQuery,
    UserPage,
    UserPath,
    UserRead,
    UserUpdate,
)
from app.services import bulk, events, mail_flows, passwords, sessions, users
from app.web import rate_limits
from app.web.auth import current_caller, require_admin, require_owner, requires, restricted_to
from app.web.bodies import streamed_body, whole_body
from app.web.responses import Response
from app.web.slots import giving_back, slots_for

bp = APIBlueprint(
    "users",
    __name__,
    url_prefix="/users",
    abp_tags=[Tag(name="users")],
    operation_id_callback=operation_id_for,
)


def _user_response(
    user: users.VersionedUserRow, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    # The row's last column is its version: the ETag, not a member of the body.
    tagged = {"ETag": etag(user.version), **(headers or {})}
    return item_response(users.user_item(user), status, tagged)


@bp.post("", responses={201: UserRead, **problems(400, 409, 413, 415, 422)})
@requires("users:write")
@idempotent
async def create_user(body: UserCreate) -> Response:
    """Create a user."""
    async with events.write_unit():
        user = await run_db(users.create_user, body)
    return _user_response(user, 201, {"Location": url_for("users.get_user", user_id=user.id)})


@bp.get("", responses={200: UserPage, **problems(400)})
@requires("users:read")
async def list_users(query: UserListQuery) -> Response:
    """List users, one keyset page at a time."""
    async with autocommit():
        items, cursor = await run_db(users.list_users, query)
    # Rows of our own typed query, in UserRead's field order, are written, not revalidated
    # (here and for one user below: ~25 us a request).
    return page_response(map(users.user_item, items), cursor)


_EXPORT_TYPES = {"application/x-ndjson": "ndjson", "text/csv": "csv"}


@bp.post(
    "/import",
    responses={200: ImportResult, **problems(400, 415), 409: ImportProblem, 422: ImportProblem},
)
@requires("users:write")
@streamed_body
async def import_users(query: ImportQuery, raw: ImportBody) -> Response:
    """Import users from a streamed NDJSON or CSV body (any size)."""
    fmt = bulk.MIMETYPES.get(raw.mimetype)
    if fmt is None:
        raise UnsupportedMediaTypeError("Send application/x-ndjson or text/csv.")
    # The whole import runs in one worker thread: reading the body blocks, and so does COPY.
    # It commits its own transaction, all or nothing, at its end (services/bulk/transfer.py,
    # target.finish): a body cut short raises before that, so nothing of it is written.
    report = await run_db_in_worker(bulk.import_users, whole_body(), fmt, query.on_conflict)
    return json_response(ImportResult.model_validate(report, from_attributes=True))


@bp.get(
    "/export",
    responses={
        200: {
            "description": "Every user as import takes them, streamed in id order.",
            "content": {mimetype: {"schema": {"type": "string"}} for mimetype in _EXPORT_TYPES},
        },
        **problems(406),
    },
)
@requires("users:read")
async def export_users() -> Response:
    """Export every user as NDJSON or CSV (by Accept), streamed in constant memory."""
    accepted = request.accept_mimetypes
    # No Accept header at all means anything will do: NDJSON.
    mimetype = accepted.best_match(list(_EXPORT_TYPES)) if accepted else "application/x-ndjson"
    if mimetype is None:
        raise NotAcceptableError("Accept application/x-ndjson or text/csv.")
    fmt = bulk.MIMETYPES[mimetype]
    settings = current_settings()
    # Each export holds a connection while its reader reads: so many a process and a caller,
    # so the pools keep room for everything else (84 stalled readers of one key once took
    # PostgreSQL past max_connections).
    slot = slots_for("exports", settings.EXPORTS_PER_PROCESS, settings.EXPORTS_PER_KEY).take(
        current_caller()
    )
    try:
        # A connection, taken and given back here, inside the app's error handlers: a full
        # pool or an unreachable database is a 503 problem now, not a failure in the middle
        # of the first chunk, outside them. (The export itself cannot start here: Flask
        # ends the request's session when the view returns, and a streamed body reads in a
        # session of its own.)
        async with autocommit():
            await run_db(bulk.database_answers)
    except BaseException:
        slot.give_back()
        raise
    # Read while the WSGI server writes: a server-side cursor, in the request's context.
    rows = stream_with_context(giving_back(bulk.export_users(fmt), slot))
    response = Response(rows, mimetype=mimetype)
    response.call_on_close(slot.give_back)  # a reader gone before the end
    return response


@bp.get("/<id:user_id>", responses={200: UserRead, **problems(404)})
@requires("users:read")
async def get_user(path: UserPath) -> Response:
    """Get one user (304 where If-None-Match names its ETag)."""
    async with autocommit():
        user = await run_db(users.get_user, path.user_id)
    return not_modified("user", user.version) or _user_response(user)


def _current(user_id: int) -> tuple[int]:
    return (users.get_user(user_id).version,)


def _update_user(
    user_id: int, body: UserUpdate, condition: WriteCondition, by_user: bool
) -> users.VersionedUserRow:
    versions = condition.versions(lambda: _current(user_id))
    if by_user:
        # A signed-in user's own email changes only once the new address confirms, as on
        # PATCH /me; an admin's or an API key's change is written at once.
        return mail_flows.update_by_user(user_id, body, versions)
    user = users.update_user(user_id, body, versions)
    if body.active is False:
        # In the same transaction: deactivated and signed out together, at once everywhere.
        sessions.revoke_user_sessions(user_id)
    return user


async def _write_user(user_id: int, body: UserUpdate) -> users.VersionedUserRow:
    # A user without users:admin changes only themselves; (de)activating needs users:admin.
    require_owner(user_id)
    if body.active is not None:
        require_admin()
    condition = write_condition(1)
    by_user = body.email is not None and restricted_to() is not None
    if by_user and body.email is not None:
        rate_limits.count_mail(body.email)
    unit = transaction() if body.active is False or by_user else unit_for(condition)
    async with unit:
        return await run_db(_update_user, user_id, body, condition, by_user)


def _delete_user(user_id: int, condition: WriteCondition) -> None:
    users.delete_user(user_id, condition.versions(lambda: _current(user_id)))


@bp.patch(
    "/<id:user_id>",
    responses={200: UserRead, **problems(400, 403, 404, 409, 412, 413, 415, 422, 429)},
)
@requires("users:write")
async def update_user(path: UserPath, body: UserUpdate) -> Response:
    """Change some fields of a user; omitted fields stay as they are."""
    return _user_response(await _write_user(path.user_id, body))


@bp.put(
    "/<id:user_id>",
    responses={200: UserRead, **problems(400, 403, 404, 409, 412, 413, 415, 422, 429)},
)
@requires("users:write")
async def replace_user(path: UserPath, body: UserUpdate) -> Response:
    """Change a user; like PATCH, because the tutorial's clients send partial PUTs."""
    return _user_response(await _write_user(path.user_id, body))


@bp.delete("/<id:user_id>", responses={204: None, **problems(403, 404, 412)})
@requires("users:write")
async def delete_user(path: UserPath) -> Response:
    """Delete a user and their posts."""
    require_owner(path.user_id)
    condition = write_condition(1)
    async with unit_for(condition):
        await run_db(_delete_user, path.user_id, condition)
    return Response(status=204)


def _set_password(user_id: int, password_hash: str) -> None:
    users.set_password_hash(user_id, password_hash)
    # In the same transaction: the old password's sessions end as the new one starts.
    sessions.revoke_user_sessions(user_id)


@bp.put("/<id:user_id>/password", responses={204: None, **problems(400, 404, 413, 415, 422, 503)})
@requires("users:admin")
async def set_user_password(path: UserPath, body: PasswordSet) -> Response:
    """Set a user's password (an admin's); every session of theirs is revoked."""
    new = passwords.checked_password(body.new_password, "new_password")
    new_hash = await passwords.hashing.run(passwords.hash_password, new)
    async with transaction():
        await run_db(_set_password, path.user_id, new_hash)
    return Response(status=204)
