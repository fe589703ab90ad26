"""Sessions: a signed-in user's access and refresh tokens, kept only as hashes."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, utcnow

TOKEN_HASH_LENGTH = 64  # SHA-256 in hex


class UserSession(Base):
    """One sign-in: its current access and refresh tokens (hashes), rotated on refresh."""

    __tablename__ = "user_session"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads a plain dict

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_account.id", ondelete="CASCADE"))
    access_token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    refresh_token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    access_expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    # How many times the refresh token was rotated, and when last.
    refresh_count: Mapped[int] = mapped_column(server_default=text("0"))
    refreshed_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        # A user's own sessions, a keyset page at a time; and all of them at a revocation.
        Index("ix_user_session_user_id_id", user_id, id),
        IDS_NEVER_REUSED,
    )

    def __repr__(self) -> str:
        return f"<UserSession {self.id} of user {self.user_id}>"


class SpentRefreshToken(Base):
    """A refresh token already rotated away: presented again, it revokes its session."""

    __tablename__ = "spent_refresh_token"

    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), primary_key=True)
    session_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("user_session.id", ondelete="CASCADE"), index=True
    )
    spent_at: Mapped[datetime] = mapped_column(server_default=utcnow())
