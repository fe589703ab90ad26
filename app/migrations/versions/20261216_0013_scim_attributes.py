"""SCIM's attributes: externalId, email type, names of users; externalId, version of groups.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-16

Expand only: nullable columns, and a version with a server default, which a running release
of 0012 neither reads nor writes (it names its columns). Plain ALTER TABLE ADD COLUMN on
every backend, as 0005 says why.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import exact_string

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_USER_COLUMNS = ("external_id", "email_type", "display_name", "given_name", "family_name")


def upgrade() -> None:
    """Add the columns."""
    for name in _USER_COLUMNS:
        kinds = {"external_id": exact_string(255), "email_type": sa.String(64)}
        kind = kinds.get(name, sa.String(255))
        op.add_column("user_account", sa.Column(name, kind, nullable=True))
    op.add_column("user_group", sa.Column("external_id", exact_string(255), nullable=True))
    op.add_column(
        "user_group",
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )


def downgrade() -> None:
    """Drop them (plain DROP COLUMN: SQLite's batch copy would lose the expression indexes)."""
    op.drop_column("user_group", "version")
    op.drop_column("user_group", "external_id")
    for name in reversed(_USER_COLUMNS):
        op.drop_column("user_account", name)
