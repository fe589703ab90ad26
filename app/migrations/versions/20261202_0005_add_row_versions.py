"""Add row versions to user_account and post.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("user_account", "post")


# Plain ALTER TABLE on every backend (SQLite has ADD and DROP COLUMN since 3.35): a batch
# migration would copy the table, and SQLite's copy loses the lower(...) unique indexes.


def upgrade() -> None:
    """Add version, 1 for every existing row: the ETags and If-Match checks count on it."""
    for table in _TABLES:
        op.add_column(
            table, sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )


def downgrade() -> None:
    """Drop the row versions."""
    for table in _TABLES:
        op.drop_column(table, "version")
