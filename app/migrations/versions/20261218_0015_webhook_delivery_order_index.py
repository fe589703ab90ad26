"""Webhook deliveries: the index of order per resource covers the state too.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-18

Expand only: a new index replaces one that a running release of 0014 may use (created
first, then the old one dropped). A claim asks, for each due delivery, whether an earlier
one of its resource to its endpoint is still pending: with the state in the index that is
one index probe, where (endpoint_id, resource_key, id) walked the resource's whole history.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("ix_webhook_delivery_resource", ["endpoint_id", "resource_key", "id"])
NEW = ("ix_webhook_delivery_waiting", ["endpoint_id", "resource_key", "state", "id"])


def upgrade() -> None:
    """Create the index with the state, then drop the one without."""
    op.create_index(NEW[0], "webhook_delivery", NEW[1])
    op.drop_index(OLD[0], table_name="webhook_delivery")


def downgrade() -> None:
    """Back to the index without the state."""
    op.create_index(OLD[0], "webhook_delivery", OLD[1])
    op.drop_index(NEW[0], table_name="webhook_delivery")
