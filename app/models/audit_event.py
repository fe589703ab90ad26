"""Change events: the outbox every successful write adds to, in its own transaction.

One row per change, written by app.services.events in the writer's transaction: the audit
log reads it, and the deliveries of webhooks and mail (a later table that refers to
``audit_event.id``) will be made from it. The application inserts rows and, once, seals
them (``seq`` and ``hash``, null until then); it never changes what an event says.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, utcnow

# A hash of the chain: SHA-256 in hex. GENESIS is the predecessor of the first event.
HASH_LENGTH = 64
GENESIS = "0" * HASH_LENGTH


class AuditEvent(Base):
    """One change: what happened, to what, by whom, field by field."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    type: Mapped[str] = mapped_column(String(40))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_label: Mapped[str | None] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    # The event's place in the hash chain and its hash, set once by the sealer.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH))

    __table_args__ = (
        Index("uq_audit_event_seq", "seq", unique=True),
        Index("ix_audit_event_resource", "resource_type", "resource_id", "id"),
        Index("ix_audit_event_occurred_at", "occurred_at"),
        IDS_NEVER_REUSED,
    )

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.type}>"


class AuditChain(Base):
    """The chain's one row: its head (the last sealed event) and its anchor (the last pruned)."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    # Pruning deletes events up to anchor_seq and records the hash of that last one, so the
    # chain that remains is verified from it.
    anchor_seq: Mapped[int] = mapped_column(BigInteger)
    anchor_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    anchored_at: Mapped[datetime | None]
