"""Prefix indexes for SCIM's sw (and /users?q='s prefixes) on PostgreSQL.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-19

Expand only: two btree indexes on lower(username) and lower(email) in text_pattern_ops, which
a running release of 0015 does not know and is not slowed by beyond their upkeep on writes.
LIKE 'ab%' is a range on them (the trigram indexes of 0012 answer a prefix from the posting
lists of every trigram in it, which for a common start read most of the index; the figures
are in app/db/types.py beside PREFIX_INDEXES). PostgreSQL only: MariaDB's unique indexes on
the case-folding columns, and SQLite's on lower(), already serve a prefix as a range.
"""

from collections.abc import Sequence

from alembic import op

from app.db.types import PREFIX_INDEX_STATEMENTS, PREFIX_INDEXES

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the prefix indexes on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in PREFIX_INDEX_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    """Drop them."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in PREFIX_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
