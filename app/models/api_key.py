"""API keys: how callers authenticate, and what they may do."""

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, utcnow

PREFIX_LENGTH = 12
NAME_MAX = 100


class ApiKey(Base):
    """A named key with scopes; only a hash of its secret is kept."""

    __tablename__ = "api_key"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads a plain dict

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(PREFIX_LENGTH), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    __table_args__ = (IDS_NEVER_REUSED,)

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix} {self.name!r}>"
