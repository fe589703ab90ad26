"""The user aggregate."""

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Index, String, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, FoldedString, exact_string, folded, utcnow

if TYPE_CHECKING:
    from app.models.post import Post

USERNAME_MAX = 80
EMAIL_MAX = 254
# An Argon2id hash in PHC form is ~100 characters; room for stronger parameters later.
PASSWORD_HASH_MAX = 255
# An identity provider's identifier or a person's name, as SCIM sends them.
SCIM_TEXT_MAX = 255
SCIM_TYPE_MAX = 64


class User(Base):
    """A user; username and email are unique whatever their letter case."""

    # Not "user": a reserved word in PostgreSQL (SQLAlchemy's own tutorial uses this name too).
    __tablename__ = "user_account"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads a plain dict

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # In Unicode NFC, as app.schemas.users.Username writes it (migration 0007 folded older
    # rows), so that the unique index compares one form of each name.
    username: Mapped[str] = mapped_column(FoldedString(USERNAME_MAX))
    email: Mapped[str] = mapped_column(FoldedString(EMAIL_MAX))
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(server_default=utcnow(), onupdate=utcnow())
    # One more on every write: the ETag, and what an If-Match write compares in its WHERE.
    version: Mapped[int] = mapped_column(server_default=text("1"))
    # None: no password set (the user cannot sign in). Never selected for a representation.
    password_hash: Mapped[str | None] = mapped_column(String(PASSWORD_HASH_MAX))
    # False: deactivated by an admin; sign-in is refused and the sessions are revoked.
    active: Mapped[bool] = mapped_column(server_default=true())
    # What an identity provider knows the user as, and the names it sends (SCIM); none of
    # them is part of /users' representation.
    external_id: Mapped[str | None] = mapped_column(exact_string(SCIM_TEXT_MAX))
    # The email's kind as SCIM names it (work, home, ...), when one was given.
    email_type: Mapped[str | None] = mapped_column(String(SCIM_TYPE_MAX))
    display_name: Mapped[str | None] = mapped_column(String(SCIM_TEXT_MAX))
    given_name: Mapped[str | None] = mapped_column(String(SCIM_TEXT_MAX))
    family_name: Mapped[str | None] = mapped_column(String(SCIM_TEXT_MAX))

    # passive_deletes: the database's ON DELETE CASCADE removes posts; no SELECT of them first.
    posts: Mapped[list["Post"]] = relationship(
        back_populates="author", lazy="raise_on_sql", passive_deletes=True
    )

    __table_args__ = (
        # The database, not a check-then-insert, guards uniqueness: on lower(...), or on the
        # column under its case-folding collation where expressions cannot be indexed.
        Index("uq_user_account_username_lower", folded(username), unique=True),
        Index("uq_user_account_email_lower", folded(email), unique=True),
        Index("ix_user_account_created_at_id", created_at, id),
        IDS_NEVER_REUSED,
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"
