"""SCIM Users: the same rows as /users. Each operation is a function of its body and the
versions it may find, which the views and /Bulk both call."""

from typing import Any

from scim2_models import Context, PatchOp, User

from app.api.conditional import not_modified, write_condition
from app.db.session import autocommit, run_db, transaction
from app.schemas.common import Versions
from app.schemas.users import UserCreate
from app.scim import resources
from app.scim.views import bp, json_body, resource_answer
from app.services import events, passwords, scim, users
from app.web.auth import requires
from app.web.responses import Response


def _checked_user(fields: dict[str, Any]) -> dict[str, Any]:
    # The same rules as POST /users: NFC, no invisible characters, a valid email.
    checked = UserCreate(username=fields["username"], email=fields["email"])
    return {**fields, "username": checked.username, "email": checked.email}


async def _hash(password: str) -> str:
    # On the hashing threads, bounded (services/passwords.py): never inside a transaction.
    return await passwords.hashing.run(
        passwords.hash_password, passwords.checked_password(password)
    )


async def _fields(user: User[Any]) -> dict[str, Any]:
    fields = _checked_user(resources.user_fields(user))
    if user.password is not None:
        fields["password_hash"] = await _hash(user.password)
    return fields


def user_answer(row: Any, *, created: bool = False) -> Response:
    """The user as SCIM JSON, with its ETag (and Location when created)."""
    return resource_answer(resources.user_resource(row), row.version, created=created)


async def create(body: dict[str, Any]) -> Any:
    """Provision a user from a SCIM body; its row."""
    user: User[Any] = User.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    fields = await _fields(user)
    async with transaction():  # the user and its events
        return await run_db(scim.create_user, fields)


async def replace(user_id: int, body: dict[str, Any], versions: Versions) -> Any:
    """Replace every attribute; its row."""
    user: User[Any] = User.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
    fields = await _fields(user)
    async with transaction():
        return await run_db(scim.replace_user, user_id, fields, versions)


_UNSET = object()  # a PATCH that leaves the password alone


def _patch_password(patch: PatchOp[User[Any]]) -> Any:
    """The password a PATCH sets (None: removed; _UNSET: not touched), its last word."""
    found: Any = _UNSET
    for op in patch.operations or []:
        if op.path is None:
            values = {k.lower(): v for k, v in dict(op.value or {}).items()}
            if "password" in values:
                found = values["password"]
        elif op.path.attr.lower() == "password":
            found = None if op.op.value == "remove" else op.value
    return found


def _patched(user_id: int, patch: PatchOp[User[Any]], versions: Versions, password: Any) -> Any:
    row = scim.get_user(user_id)
    if versions is not None and (row.version,) not in versions:
        versions = []  # stale: the write below finds no row, a 412
    user = resources.user_resource(row)
    patch.patch(user)
    fields = _checked_user(resources.user_fields(user))
    if password is not _UNSET:
        fields["password_hash"] = password
    # The version read is the one the write must find: one written meanwhile is a 412.
    return scim.replace_user(user_id, fields, [(row.version,)] if versions is None else versions)


async def patch(user_id: int, body: dict[str, Any], versions: Versions) -> Any:
    """Apply PATCH operations (add, replace, remove; RFC 7644 3.5.2); the row."""
    operations = PatchOp[User[Any]].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    password = _patch_password(operations)
    if isinstance(password, str):
        password = await _hash(password)
    async with transaction():
        return await run_db(_patched, user_id, operations, versions, password)


async def delete(user_id: int, versions: Versions) -> None:
    """Deprovision a user (their posts, sessions and memberships go with them)."""
    async with events.write_unit():  # the delete and its event: one statement or one transaction
        await run_db(users.delete_user, user_id, versions)


@bp.post("/Users")
@requires("scim")
async def create_user() -> Response:
    """Provision a user; a taken userName or email is a 409 (uniqueness)."""
    return user_answer(await create(json_body()), created=True)


@bp.get("/Users/<id:user_id>")
@requires("scim")
async def get_user(user_id: int) -> Response:
    """One user (304 where If-None-Match names its version)."""
    async with autocommit():
        row = await run_db(scim.get_user, user_id)
    return not_modified("user", row.version) or user_answer(row)


@bp.put("/Users/<id:user_id>")
@requires("scim")
async def replace_user(user_id: int) -> Response:
    """Replace a user's attributes (If-Match: only at that version, else 412)."""
    return user_answer(await replace(user_id, json_body(), write_condition(1).allowed))


@bp.patch("/Users/<id:user_id>")
@requires("scim")
async def patch_user(user_id: int) -> Response:
    """Apply PATCH operations to a user."""
    return user_answer(await patch(user_id, json_body(), write_condition(1).allowed))


@bp.delete("/Users/<id:user_id>")
@requires("scim")
async def delete_user(user_id: int) -> Response:
    """Deprovision a user."""
    await delete(user_id, write_condition(1).allowed)
    return Response(status=204)
