"""Fold usernames to Unicode NFC.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10

The API stores and compares usernames in NFC from this release on; a name stored before in
another form ("e" and a combining accent for "é") is rewritten in NFC, its version moved on
(the ETag changes with the representation). Two users whose names become equal, as the
unique index compares them, cannot both be kept: the migration then writes nothing and stops,
naming their ids, for an operator to rename one of each (PATCH /users/{id}) and migrate again.
"""

import logging
import unicodedata
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import context, op

from app.db.types import FoldedString, UTCDateTime, folded, utcnow

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# The column as this migration found it, not as the model may later say.
USERNAME_MAX = 80
PAGE = 5_000
_users = sa.table(
    "user_account",
    sa.column("id", sa.BigInteger()),
    sa.column("username", FoldedString(USERNAME_MAX)),
    sa.column("updated_at", UTCDateTime()),
    sa.column("version", sa.Integer()),
)


class UsernamesCollideError(RuntimeError):
    """Usernames that would be equal, or too long, once in NFC: nothing was changed."""


def _unfolded(connection: sa.Connection) -> Iterator[tuple[int, str]]:
    # By pages of ids: no server-side cursor open while the updates run on the same connection.
    last = 0
    while True:
        page = connection.execute(
            sa.select(_users.c.id, _users.c.username)
            .where(_users.c.id > last)
            .order_by(_users.c.id)
            .limit(PAGE)
        ).all()
        if not page:
            return
        for user_id, username in page:
            if not unicodedata.is_normalized("NFC", username):
                yield user_id, unicodedata.normalize("NFC", username)
        last = page[-1][0]


def _others_named(connection: sa.Connection, user_id: int, username: str) -> list[int]:
    # The database judges equality, as its unique index does: lower() on SQLite and
    # PostgreSQL, the column's case-folding collation on MariaDB.
    same = folded(_users.c.username) == folded(username)
    query = sa.select(_users.c.id).where(same, _users.c.id != user_id).order_by(_users.c.id)
    return list(connection.execute(query).scalars())


def _users_named(ids: list[int]) -> str:
    *first, last = [str(user_id) for user_id in ids]
    return f"users {', '.join(first)} and {last}" if first else f"user {last}"


def upgrade() -> None:
    """Rewrite every username in NFC, or change nothing and name the users that collide."""
    if context.is_offline_mode():
        # Rows cannot be read into a SQL script; the names stay as they are until run online.
        log.warning("Usernames are folded to NFC only when migrating online, not in --sql")
        return
    connection = op.get_bind()
    problems: list[str] = []
    folded_count = 0
    for user_id, username in list(_unfolded(connection)):
        if len(username) > USERNAME_MAX:
            problems.append(f"user {user_id}: over {USERNAME_MAX} characters once in NFC")
            continue
        # Compared with every other row as it is now: the names rewritten before this one
        # in NFC, the others as stored. An equal stored form is, but for contrived
        # names, an equal NFC form too; a contrived one is named as well, never lost.
        others = _others_named(connection, user_id, username)
        if others:
            problems.append(
                f"{_users_named(sorted([*others, user_id]))}: the same name once in NFC"
            )
            continue
        connection.execute(
            sa.update(_users)
            .where(_users.c.id == user_id)
            .values(username=username, updated_at=utcnow(), version=_users.c.version + 1)
        )
        folded_count += 1
    if problems:
        # Raised in the migration's transaction: the rewrites above are rolled back with it.
        # Ids only: the names are users' data, and this message goes to logs.
        raise UsernamesCollideError(
            "Usernames cannot be folded to NFC; nothing was changed. Rename one user of each "
            "and migrate again: " + "; ".join(problems) + "."
        )
    if folded_count:
        log.info("Folded %d usernames to NFC", folded_count)


def downgrade() -> None:
    """Keep the names in NFC: the forms they replaced were not kept, and the schema is the same."""
