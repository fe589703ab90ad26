"""PostgreSQL's index for SCIM's co (and /users?q=) shorter than a trigram.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-21

Expand only, and only on PostgreSQL (elsewhere nothing): a side table of each user's 1- and
2-character substrings of the folded username and email, a GIN index on each, the watermark
of what the worker has copied into it, and an index on user_account.updated_at for the users
changed since (the design in app/db/user_search.py; MariaDB's of 0017, with pg_trgm still
serving 3 characters or more). A running release of 0018 neither reads nor writes them; it
pays only the upkeep of the updated_at index on its writes. The side table starts empty and
every user counts as changed: the worker's first round fills it, off the request path, and
searches are exact before. The updated_at index is built in the migration's transaction, as
0016's are (user_account waits for writes meanwhile: about a second per 1,000,000 users).
"""

from collections.abc import Sequence

from alembic import op

from app.db import user_search

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the side table, its watermark and the updated_at index on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in user_search.POSTGRESQL_CREATE_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    """Drop them (nothing is lost: the side table is made from user_account)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in user_search.POSTGRESQL_DROP_STATEMENTS:
        op.execute(statement)
