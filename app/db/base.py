"""The declarative base of every model: naming convention and column types."""

from datetime import datetime
from typing import ClassVar

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, registry

from app.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every table with an integer id ends its __table_args__ with this: on SQLite an id is then
# never given twice (AUTOINCREMENT; migration 0008 says why). PostgreSQL's sequences and
# MariaDB's AUTO_INCREMENT never reuse one anyway.
IDS_NEVER_REUSED: dict[str, bool] = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    """Base of every model; our own class so mypy --strict sees real types."""

    # On a registry, not on Base: Flask-SQLAlchemy 3.1 drops Base-level settings (#1361).
    registry: ClassVar[registry] = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )
