"""Column types and SQL functions that behave the same on SQLite and PostgreSQL."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, TypeDecorator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.config import Backend

# 64-bit ids on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC; SQLite, which keeps no offset, reads back UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        """Values are datetimes (TypeDecorator would say ``object``)."""
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; naive datetimes are refused rather than guessed."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to a UTC column"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        # SQLite compares stored text: keep the same text form as the database's own default.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        """Attach UTC where the driver returns a naive value."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class utcnow(FunctionElement[datetime]):  # noqa: N801 - reads as the SQL function it renders
    """The current UTC time, evaluated by the database at statement time."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utcnow, "postgresql")
def _utcnow_postgresql(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    # statement_timestamp(), not now(): two updates in one transaction still differ.
    return "statement_timestamp()"


@compiles(utcnow, "sqlite")
def _utcnow_sqlite(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    # Microseconds, zero-padded to the six digits SQLAlchemy writes, so text comparison orders.
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


@compiles(utcnow)
def _utcnow_default(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


def insert_for(backend: Backend, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` in the backend's dialect: one with ON CONFLICT clauses."""
    return (postgresql.insert if backend == "postgresql" else sqlite.insert)(table)
