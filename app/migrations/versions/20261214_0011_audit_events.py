"""Change events: audit_event (the outbox) and audit_chain (its hash chain's head and anchor).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-14

Expand only: two new tables that a running release of 0010 never reads or writes (its writes
record no events; the sealer chains what there is, whenever it was written).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import BigId, UTCDateTime, utcnow

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    """Create audit_event and its indexes, and audit_chain with its one row at genesis."""
    op.create_table(
        "audit_event",
        sa.Column("id", BigId, nullable=False),
        sa.Column("occurred_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_label", sa.String(255), nullable=True),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_audit_event_seq", "audit_event", ["seq"], unique=True)
    op.create_index(
        "ix_audit_event_resource", "audit_event", ["resource_type", "resource_id", "id"]
    )
    op.create_index("ix_audit_event_occurred_at", "audit_event", ["occurred_at"])
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", BigId, nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
        sa.Column("anchored_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    op.bulk_insert(
        chain,
        [{"id": 1, "head_seq": 0, "head_hash": GENESIS, "anchor_seq": 0, "anchor_hash": GENESIS}],
    )


def downgrade() -> None:
    """Drop both tables (their indexes with them)."""
    op.drop_table("audit_chain")
    op.drop_table("audit_event")
