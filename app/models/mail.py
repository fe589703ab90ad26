"""Mail: messages waiting in the outbox, and the single-use tokens their links carry."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, utcnow
from app.models.outbox import OutboxColumns
from app.models.user import EMAIL_MAX
from app.models.user_session import TOKEN_HASH_LENGTH

KIND_MAX = 32
PURPOSE_MAX = 16


class MailMessage(OutboxColumns, Base):
    """One mail to send: an outbox row, written in the transaction of what causes it.

    No body is stored: the worker renders it from the package's templates when it sends,
    and issues the link's token then (app/services/mail.py), so no token is ever kept in
    clear, here or anywhere; ``data`` holds only what the template needs besides it.
    """

    __tablename__ = "mail_message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Which template: invitation, password_reset, email_verification, email_changed, ...
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    recipient: Mapped[str] = mapped_column(String(EMAIL_MAX))
    # The user the mail is about, when one is known at queueing (a reset request's address
    # is resolved by the worker, so that the request does the same work for any address).
    user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="CASCADE")
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        # The worker's claim: due rows by state and time.
        Index("ix_mail_message_due", "state", "next_attempt_at"),
        # Deleting a user deletes its mail (ON DELETE CASCADE): found by this, not a scan
        # of every message (migration 0018; tests/db/test_foreign_key_indexes.py).
        Index("ix_mail_message_user_id", "user_id"),
        IDS_NEVER_REUSED,
    )

    def __repr__(self) -> str:
        return f"<MailMessage {self.id} {self.kind} {self.state}>"


class MailToken(Base):
    """The live token of one purpose for one user: a newer one overwrites it (superseding
    it by construction), and spending it is one conditional UPDATE (app/services/mail.py)."""

    __tablename__ = "mail_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_account.id", ondelete="CASCADE"))
    # invitation, password_reset, email (a change of address), signup.
    purpose: Mapped[str] = mapped_column(String(PURPOSE_MAX))
    # SHA-256 of the token, in hex: the token itself is only in the mail.
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    # The address the token confirms (a change of address), else null.
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())

    __table_args__ = (
        # One live token per user and purpose: the guard that makes a newer one supersede.
        Index("uq_mail_token_user_purpose", "user_id", "purpose", unique=True),
        IDS_NEVER_REUSED,
    )

    def __repr__(self) -> str:
        return f"<MailToken {self.id} {self.purpose} of user {self.user_id}>"
