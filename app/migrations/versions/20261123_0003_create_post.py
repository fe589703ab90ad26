"""Create post.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import BigId, LongText, UTCDateTime, utcnow

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create posts, removed with their author by the database."""
    op.create_table(
        "post",
        sa.Column("id", BigId, nullable=False),
        sa.Column("author_id", BigId, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", LongText, nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_post_author_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post")),
    )
    op.create_index("ix_post_author_id_id", "post", ["author_id", "id"])
    op.create_index("ix_post_created_at_id", "post", ["created_at", "id"])


def downgrade() -> None:
    """Drop posts, and their indexes with them (MariaDB keeps the author index while the
    foreign key that uses it stands)."""
    op.drop_table("post")
