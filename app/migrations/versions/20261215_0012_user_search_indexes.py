"""Trigram indexes for GET /users?q= on PostgreSQL.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-15

Expand only: two indexes that a running release of 0011 does not know and is not slowed by
beyond their upkeep on writes. PostgreSQL only: pg_trgm's GIN indexes on lower(username) and
lower(email) serve LIKE '%text%' (and 'text%') there. MariaDB has no n-gram index (its
FULLTEXT indexes words, not substrings) and SQLite's FTS5 trigram tables would need triggers
on every write to the users: both scan, which docs/explanation/databases.md states with its
figures. pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
Where it cannot be created (a managed server without contrib, a role without CREATE), the
migration goes on without the indexes and says so: a search then scans, as on the others.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.exc import DBAPIError

from app.db.types import SEARCH_INDEX_STATEMENTS, SEARCH_INDEXES

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)


def _has_trigrams() -> bool:
    if context.is_offline_mode():
        # A script for someone to run: it says what it needs, and fails loudly if refused.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        return True
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError as error:
        log.warning(
            "pg_trgm could not be created (%s): GET /users?q= will scan the users; to index "
            "it, a superuser runs CREATE EXTENSION pg_trgm, then the owner runs: %s",
            type(error.orig).__name__,
            "; ".join(SEARCH_INDEX_STATEMENTS),
        )
        return False
    return True


def upgrade() -> None:
    """Create the trigram indexes on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql" or not _has_trigrams():
        return
    for statement in SEARCH_INDEX_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    """Drop them (the extension stays: other schemas of the database may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in SEARCH_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
