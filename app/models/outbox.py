"""What an outbox row carries, whatever it sends: its state, attempts and lease.

Webhook deliveries and mail are both outbox rows: written in the transaction of the change
that causes them (or of the sealing round that fans events out), sent later by the worker.
A worker leases the rows it claims (``leased_until``) instead of holding a transaction open
while it sends, so a worker killed mid-send loses nothing: its lease runs out and another
worker, or the same one restarted, sends the row again (app/services/outbox.py).
"""

from datetime import datetime

from sqlalchemy import String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.types import utcnow

# The states of an outbox row: waiting for its next attempt, delivered, or given up on.
PENDING = "pending"
SENT = "sent"
FAILED = "failed"
STATES = (PENDING, SENT, FAILED)
ERROR_MAX = 500


class OutboxColumns:
    """The columns every outbox table has (a mixin: each table gets its own copies)."""

    state: Mapped[str] = mapped_column(String(16), server_default=text(f"'{PENDING}'"))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    # Due at or after this moment; moved on by the backoff after each failed attempt.
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    # Claimed by a worker until this moment; once past, the row is due again.
    leased_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    finished_at: Mapped[datetime | None]
