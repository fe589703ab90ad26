"""An index on each foreign key that had none: webhook_delivery.event_id, mail_message.user_id.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-20

Deleting an audit event (pruning) or a user deletes the rows that refer to it (ON DELETE
CASCADE), and PostgreSQL and SQLite find them by reading the whole referring table for each
row deleted: pruning 20,000 events with a delivery each took 26.2 s on PostgreSQL without
the index and 0.12 s with it (psql, one run, 2026-12-07). InnoDB made such an index itself
when the key was created; the named one takes its place.

Expand only: a running release of 0017 is not slowed beyond the indexes' upkeep on writes.
Built in the migration's one transaction (app.db.migrations.migrate), as 0016's are: the two
tables wait for writes while an index builds (deliveries are kept for the audit log's
retention; CONCURRENTLY would need a migration outside that transaction).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_webhook_delivery_event_id", "webhook_delivery", "event_id"),
    ("ix_mail_message_user_id", "mail_message", "user_id"),
)


def upgrade() -> None:
    """Create the indexes."""
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    """Drop them. InnoDB refuses to drop the one index of a foreign key: there, unless it
    kept the index it had made itself, that one (named as the key) comes back first."""
    bind = op.get_bind()
    for name, table, column in INDEXES:
        if bind.dialect.name == "mysql" and not _other_index_leads(bind, table, column, name):
            keys = sa.inspect(bind).get_foreign_keys(table)
            key = next(key for key in keys if key["constrained_columns"] == [column])
            op.create_index(str(key["name"]), table, [column])
        op.drop_index(name, table_name=table)


def _other_index_leads(bind: sa.Connection, table: str, column: str, name: str) -> bool:
    # Whether InnoDB kept its own index beside ours (it drops it only sometimes).
    indexes = sa.inspect(bind).get_indexes(table)
    return any(i["name"] != name and i["column_names"][:1] == [column] for i in indexes)
