"""Groups: a name and scopes; a member's access token carries their groups' scopes."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import IDS_NEVER_REUSED, Base
from app.db.types import BigId, FoldedString, exact_string, folded, utcnow
from app.models.user import SCIM_TEXT_MAX

GROUP_NAME_MAX = 80


class Group(Base):
    """A named set of scopes; its name is unique whatever its letter case."""

    # Not "group": a reserved word in SQL.
    __tablename__ = "user_group"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads a plain dict

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # In NFC, as app.schemas.groups.GroupName writes it, so the unique index compares one form.
    name: Mapped[str] = mapped_column(FoldedString(GROUP_NAME_MAX))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # What an identity provider knows the group as (SCIM).
    external_id: Mapped[str | None] = mapped_column(exact_string(SCIM_TEXT_MAX))
    # One more on every change of the group or of its members: SCIM's meta.version.
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(server_default=utcnow(), onupdate=utcnow())

    __table_args__ = (
        # The database guards uniqueness (lower(name), or the folding collation on MariaDB).
        Index("uq_user_group_name_lower", folded(name), unique=True),
        IDS_NEVER_REUSED,
    )

    def __repr__(self) -> str:
        return f"<Group {self.id} {self.name!r}>"


class GroupMember(Base):
    """A user's membership of a group; gone with either."""

    __tablename__ = "group_member"

    group_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )

    # A user's groups (every access token's scopes) are read by user_id.
    __table_args__ = (Index("ix_group_member_user_id", user_id),)

    def __repr__(self) -> str:
        return f"<GroupMember {self.group_id} {self.user_id}>"
