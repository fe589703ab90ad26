"""Webhooks: the endpoints integrators register, and the deliveries of events to them."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, text, true
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, utcnow
from app.models.outbox import OutboxColumns

URL_MAX = 2048
DESCRIPTION_MAX = 500
# "whsec_" and the base64 of 32 random bytes (Standard Webhooks' secret form).
SECRET_MAX = 64
EXCERPT_MAX = 1024


class WebhookEndpoint(Base):
    """Where events of the chosen types are sent, signed with the endpoint's secret."""

    __tablename__ = "webhook_endpoint"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads a plain dict

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(URL_MAX))
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX))
    # Event types, or ["*"] for every type.
    events: Mapped[list[str]] = mapped_column(JSON)
    # Kept, not hashed: every delivery is signed with it (HMAC needs the key itself).
    secret: Mapped[str] = mapped_column(String(SECRET_MAX))
    # After a rotation the old secret signs too, until previous_secret_until.
    previous_secret: Mapped[str | None] = mapped_column(String(SECRET_MAX))
    previous_secret_until: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(server_default=true())
    # Why the service disabled it (a 410, or failures in a row), null when enabled by hand.
    disabled_reason: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX))
    failures_in_row: Mapped[int] = mapped_column(server_default=text("0"))
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(server_default=utcnow(), onupdate=utcnow())

    __table_args__ = (IDS_NEVER_REUSED,)

    def __repr__(self) -> str:
        return f"<WebhookEndpoint {self.id} {self.url!r}>"


class WebhookDelivery(OutboxColumns, Base):
    """One event to one endpoint: an outbox row, sent until it succeeds or is given up."""

    __tablename__ = "webhook_delivery"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_endpoint.id", ondelete="CASCADE")
    )
    # The event's id is the webhook-id of every attempt. Pruning the audit log deletes the
    # deliveries of the events it prunes (retention is days; delivery gives up after one).
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("audit_event.id", ondelete="CASCADE"))
    # The event's resource, copied: deliveries to one endpoint go in order per resource.
    resource_key: Mapped[str] = mapped_column(String(100))

    __table_args__ = (
        # One delivery of an event to an endpoint, however often fan-out runs.
        Index("uq_webhook_delivery_endpoint_event", "endpoint_id", "event_id", unique=True),
        # Pruning the audit log deletes its events' deliveries (ON DELETE CASCADE): found by
        # this, not a scan of every delivery for each event (migration 0018).
        Index("ix_webhook_delivery_event_id", "event_id"),
        # The worker's claim: due rows by state and time.
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        # Order per resource: whether an earlier delivery of a resource to an endpoint is
        # still pending, one probe whatever the resource's history (migration 0015).
        Index("ix_webhook_delivery_waiting", "endpoint_id", "resource_key", "state", "id"),
        IDS_NEVER_REUSED,
    )

    def __repr__(self) -> str:
        return f"<WebhookDelivery {self.id} event {self.event_id} to {self.endpoint_id}>"


class WebhookAttempt(Base):
    """One attempt of a delivery: what the receiver answered, and how long it took."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_delivery.id", ondelete="CASCADE")
    )
    started_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    duration_ms: Mapped[int]
    # The receiver's status, or null when no answer came (refused, timed out, unsafe address).
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX))
    # The first EXCERPT_MAX characters of the receiver's answer.
    response_excerpt: Mapped[str | None] = mapped_column(String(EXCERPT_MAX))

    __table_args__ = (Index("ix_webhook_attempt_delivery", "delivery_id", "id"), IDS_NEVER_REUSED)

    def __repr__(self) -> str:
        return f"<WebhookAttempt {self.id} of {self.delivery_id}: {self.status_code}>"
