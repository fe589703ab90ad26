"""Posts, each owned by one user."""

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, LongText, utcnow

if TYPE_CHECKING:
    from app.models.user import User

TITLE_MAX = 200
BODY_MAX = 100_000


class Post(Base):
    """A post; deleting its author deletes it (in the database, ON DELETE CASCADE)."""

    __tablename__ = "post"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads a plain dict

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_account.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    body: Mapped[str] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(server_default=utcnow(), onupdate=utcnow())
    # One more on every write: the ETag, and what an If-Match write compares in its WHERE.
    version: Mapped[int] = mapped_column(server_default=text("1"))

    # raise_on_sql: an unplanned lazy load is an error, so N+1 cannot creep in unnoticed.
    author: Mapped["User"] = relationship(back_populates="posts", lazy="raise_on_sql")

    __table_args__ = (
        # Keyset orders: a user's posts by id, all posts by id or by (created_at, id).
        Index("ix_post_author_id_id", author_id, id),
        Index("ix_post_created_at_id", created_at, id),
        IDS_NEVER_REUSED,
    )

    def __repr__(self) -> str:
        return f"<Post {self.id} by {self.author_id}>"
