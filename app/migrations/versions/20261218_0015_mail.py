"""Mail: mail_message (an outbox table) and mail_token.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-18

Expand only: two new tables that a running release of 0014 never reads or writes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import BigId, UTCDateTime, utcnow

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def outbox_columns() -> list[sa.Column[object]]:
    """The columns of app.models.outbox.OutboxColumns, as of this revision."""
    return [
        sa.Column("state", sa.String(16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("leased_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    ]


def upgrade() -> None:
    """Create the two tables and their indexes."""
    op.create_table(
        "mail_message",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        *outbox_columns(),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_mail_message_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_message")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mail_message_due", "mail_message", ["state", "next_attempt_at"])
    op.create_table(
        "mail_token",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_mail_token_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_mail_token_token_hash")),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_mail_token_user_purpose", "mail_token", ["user_id", "purpose"], unique=True)


def downgrade() -> None:
    """Drop the two tables."""
    op.drop_table("mail_token")
    op.drop_table("mail_message")
