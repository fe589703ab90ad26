"""Groups: user_group (a name unique whatever its letter case, and scopes) and group_member.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-13

Expand only: two new tables that a running release of 0009 never reads or writes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import BigId, FoldedString, UTCDateTime, folded, utcnow

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create user_group and group_member."""
    op.create_table(
        "user_group",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", FoldedString(length=80), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_group")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_user_group_name_lower", "user_group", [folded(sa.column("name"))], unique=True
    )
    op.create_table(
        "group_member",
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["user_group.id"],
            name=op.f("fk_group_member_group_id_user_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_group_member_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_member")),
    )
    op.create_index("ix_group_member_user_id", "group_member", ["user_id"])


def downgrade() -> None:
    """Drop the memberships, then the groups (their indexes with them)."""
    op.drop_table("group_member")
    op.drop_table("user_group")
