"""Accounts: user passwords and active, sessions, spent refresh tokens.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12

Expand only: a running release of 0008 keeps serving while this one migrates. It names the
columns it reads and writes, so the two new ones of user_account (a nullable hash, and
active with a server default of true) change nothing it does; the new tables are unknown to
it. Plain ALTER TABLE ADD COLUMN on every backend, as 0005 says why.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import BigId, UTCDateTime, utcnow

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add user_account.password_hash and .active; create user_session, spent_refresh_token."""
    op.add_column("user_account", sa.Column("password_hash", sa.String(255), nullable=True))
    op.add_column(
        "user_account",
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.create_table(
        "user_session",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("access_token_hash", sa.String(64), nullable=False),
        sa.Column("refresh_token_hash", sa.String(64), nullable=False),
        sa.Column("access_expires_at", UTCDateTime(), nullable=False),
        sa.Column("refresh_expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("refresh_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("refreshed_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_session_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_session")),
        sa.UniqueConstraint("access_token_hash", name=op.f("uq_user_session_access_token_hash")),
        sa.UniqueConstraint("refresh_token_hash", name=op.f("uq_user_session_refresh_token_hash")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_user_session_user_id_id", "user_session", ["user_id", "id"])
    op.create_table(
        "spent_refresh_token",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("session_id", BigId, nullable=False),
        sa.Column("spent_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_session.id"],
            name=op.f("fk_spent_refresh_token_session_id_user_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_spent_refresh_token")),
    )
    op.create_index("ix_spent_refresh_token_session_id", "spent_refresh_token", ["session_id"])


def downgrade() -> None:
    """Drop the sessions (their indexes with them: MariaDB refuses to drop an index a
    foreign key uses) and the new columns."""
    op.drop_table("spent_refresh_token")
    op.drop_table("user_session")
    op.drop_column("user_account", "active")
    op.drop_column("user_account", "password_hash")
