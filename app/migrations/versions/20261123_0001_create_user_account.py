"""Create user_account.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import BigId, FoldedString, UTCDateTime, folded, utcnow

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the user table with case-insensitive unique username and email."""
    op.create_table(
        "user_account",
        sa.Column("id", BigId, nullable=False),
        sa.Column("username", FoldedString(length=80), nullable=False),
        sa.Column("email", FoldedString(length=254), nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
    )
    op.create_index(
        "uq_user_account_username_lower",
        "user_account",
        [folded(sa.column("username"))],
        unique=True,
    )
    op.create_index(
        "uq_user_account_email_lower", "user_account", [folded(sa.column("email"))], unique=True
    )
    op.create_index("ix_user_account_created_at_id", "user_account", ["created_at", "id"])
    op.create_index("ix_user_account_username_id", "user_account", ["username", "id"])


def downgrade() -> None:
    """Drop the user table."""
    op.drop_index("ix_user_account_username_id", table_name="user_account")
    op.drop_index("ix_user_account_created_at_id", table_name="user_account")
    op.drop_index("uq_user_account_email_lower", table_name="user_account")
    op.drop_index("uq_user_account_username_lower", table_name="user_account")
    op.drop_table("user_account")
