"""Drop ix_user_account_username_id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Drop the (username, id) index: the username sorts use the unique lower(username) one."""
    op.drop_index("ix_user_account_username_id", table_name="user_account")


def downgrade() -> None:
    """Recreate the (username, id) index the case-sensitive username sorts used."""
    op.create_index("ix_user_account_username_id", "user_account", ["username", "id"])
