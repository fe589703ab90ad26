"""MariaDB's index for SCIM's co and ew (and /users?q=) on usernames and emails.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-20

Expand only, and only on MariaDB with the Mroonga engine installed (elsewhere nothing): a
Mroonga side table with a bigram index on username and email, the watermark of what the
worker has copied into it, and an index on user_account.updated_at for the users changed
since (the design in app/db/user_search.py). A running release of 0016 neither reads nor
writes them; it pays only the upkeep of the updated_at index on its writes. The side table
starts empty and every user counts as changed: the worker's first round fills it (1,000,000
users in about 50 s at a quiet moment, off the request path), and searches are exact before.
"""

from collections.abc import Sequence

from alembic import op

from app.db import user_search

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the side table, its watermark and the updated_at index where Mroonga is."""
    bind = op.get_bind()
    if bind.dialect.name != "mysql" or not user_search.mroonga_installed(bind):
        return
    for statement in user_search.CREATE_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    """Drop them (nothing is lost: the side table copies user_account)."""
    if op.get_bind().dialect.name != "mysql":
        return
    for statement in user_search.DROP_STATEMENTS:
        op.execute(statement)
