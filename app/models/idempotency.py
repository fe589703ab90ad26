"""Idempotency keys: the first response to a POST that named one, kept for its retries."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, utcnow

KEY_MAX = 255
# What a key may be (API.md): 1 to KEY_MAX visible ASCII characters. The header's check
# (app.api.idempotency) and its OpenAPI schema (app.openapi) both read it.
KEY_PATTERN = rf"^[!-~]{{1,{KEY_MAX}}}$"


class IdempotencyKey(Base):
    """One API key's use of one Idempotency-Key; ``status`` is None while the first runs."""

    __tablename__ = "idempotency_key"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Keys are per API key: another caller's "abc" is not ours. Revoking never deletes a
    # key row; deleting one does, and its idempotency keys go with it.
    api_key_id: Mapped[int] = mapped_column(BigId, ForeignKey("api_key.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(KEY_MAX))
    # SHA-256 of the method, the path and the body: the same key with another request is
    # the client's mistake (422), not a retry.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    location: Mapped[str | None] = mapped_column(String(2048))
    etag: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    expires_at: Mapped[datetime]

    __table_args__ = (
        # The only guard against two first requests: a concurrent claim loses here.
        UniqueConstraint("api_key_id", "key"),
        Index("ix_idempotency_key_expires_at", "expires_at"),
        IDS_NEVER_REUSED,
    )
