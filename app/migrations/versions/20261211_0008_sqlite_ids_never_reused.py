"""SQLite: ids are never reused (AUTOINCREMENT).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-11

A SQLite rowid table hands out max(id) + 1: after the tutorial's DELETE /users/1 the next
user got id 1 again, at version 1, so with the deleted user's URL and ETag (a client's cached
If-None-Match got a 304 for a different person). AUTOINCREMENT keeps the highest id ever
given in sqlite_sequence and never goes below it. PostgreSQL's sequences and MariaDB's
AUTO_INCREMENT (kept across restarts since 10.2.4) never reuse ids already: there, nothing
changes.

SQLite cannot add AUTOINCREMENT to a table, so each is copied into a new one. The order
matters where foreign keys are on (the server's engine turns them on): dropping a table is an
implicit DELETE that fires ON DELETE CASCADE, so the children (post, idempotency_key) are set
aside and dropped before their parents are copied, then made again and refilled. Copying
with the ids kept sets sqlite_sequence to each table's highest id; ids deleted above it
before this migration are not known, and can be given once more.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables, named here only: the statements below are built from these constants.
PARENTS = ("user_account", "api_key")
CHILDREN = ("post", "idempotency_key")


def _definitions(name: str) -> tuple[str, list[str]]:
    """The table's CREATE TABLE and its own CREATE INDEX statements, as SQLite keeps them."""
    rows = op.get_bind().execute(
        sa.text("SELECT type, sql FROM sqlite_master WHERE tbl_name = :name AND sql IS NOT NULL"),
        {"name": name},
    )
    table, indexes = "", []
    for kind, sql in rows:
        if kind == "table":
            table = sql
        elif kind == "index":
            indexes.append(sql)
    return table, indexes


def _with_autoincrement(name: str, create: str) -> str:
    """The CREATE TABLE with its id an AUTOINCREMENT primary key (SQLite takes the keyword
    only on a column declared INTEGER PRIMARY KEY, not on a table constraint)."""
    if " AUTOINCREMENT" in create:  # upgraded before, and downgraded since
        return create
    create, constraints = re.subn(rf",\s*CONSTRAINT pk_{name} PRIMARY KEY \(id\)", "", create)
    create, columns = re.subn(
        r"\bid INTEGER NOT NULL,",
        f"id INTEGER NOT NULL CONSTRAINT pk_{name} PRIMARY KEY AUTOINCREMENT,",
        create,
        count=1,
    )
    if constraints != 1 or columns != 1:  # a schema this migration was not written for
        msg = f"{name}: unexpected definition, not changed: {create}"
        raise RuntimeError(msg)
    return create


def upgrade() -> None:
    """Remake every table with an integer id as an AUTOINCREMENT one (SQLite only)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    saved = {name: _definitions(name) for name in (*PARENTS, *CHILDREN)}
    if all(" AUTOINCREMENT" in table for table, _ in saved.values()):
        return
    for name in CHILDREN:  # nothing refers to them: dropping them cascades nowhere
        op.execute(f"CREATE TEMP TABLE _kept_{name} AS SELECT * FROM {name}")  # noqa: S608
        op.execute(f"DROP TABLE {name}")
    for name in PARENTS:  # no child row left to cascade to
        table, indexes = saved[name]
        op.execute(f"ALTER TABLE {name} RENAME TO _old_{name}")
        op.execute(_with_autoincrement(name, table))
        op.execute(f"INSERT INTO {name} SELECT * FROM _old_{name}")  # noqa: S608
        op.execute(f"DROP TABLE _old_{name}")  # its indexes with it; made again below
        for index in indexes:
            op.execute(index)
    for name in CHILDREN:
        table, indexes = saved[name]
        op.execute(_with_autoincrement(name, table))
        op.execute(f"INSERT INTO {name} SELECT * FROM _kept_{name}")  # noqa: S608
        op.execute(f"DROP TABLE _kept_{name}")
        for index in indexes:
            op.execute(index)


def downgrade() -> None:
    """Keep AUTOINCREMENT: the older release reads and writes these tables as they are."""
