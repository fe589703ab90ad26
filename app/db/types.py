"""Column types and SQL functions that behave the same on SQLite, PostgreSQL and MariaDB."""

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Integer,
    String,
    Text,
    TypeDecorator,
    and_,
    func,
    literal,
    true,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Insert, coercions, roles
from sqlalchemy.sql._typing import _ColumnExpressionArgument
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine

from app.config import Backend
from app.db import user_search

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

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """MariaDB's DATETIME keeps whole seconds unless told six digits."""
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; naive datetimes are refused rather than guessed."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to a UTC column"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        # SQLite compares stored text: keep the same text form as the database's own default.
        # MariaDB's DATETIME has no zone and would shift an aware value by the session's.
        return value.replace(tzinfo=None) if dialect.name in {"sqlite", "mysql"} else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        """Attach UTC where the driver returns a naive value."""
        if value is None or value.tzinfo is UTC:  # PostgreSQL's, in a UTC session: as it is
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """None (no call per value) where every session of the dialect's engine is in UTC:
        psycopg then returns ``datetime.UTC`` itself, which process_result_value would pass
        through (200 calls in a list of 100: bench/cpu.py)."""
        if getattr(dialect, _UTC_SESSIONS, False):
            return None
        return super().result_processor(dialect, coltype)


# Set on a dialect (one per engine) whose connections all start in TimeZone=UTC.
_UTC_SESSIONS = "_app_utc_sessions"


def sessions_in_utc(dialect: Dialect) -> None:
    """Say that every connection of this dialect's engine runs in a UTC session (its
    connect options set TimeZone=UTC): its timestamps need no processing as they are read.
    Called before the engine runs its first statement, since processors are cached."""
    setattr(dialect, _UTC_SESSIONS, True)


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


@compiles(utcnow, "mysql")
def _utcnow_mysql(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    # UTC whatever the session's time zone, with microseconds; evaluated per statement.
    return "UTC_TIMESTAMP(6)"


@compiles(utcnow)
def _utcnow_default(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


# A post's body, up to 100,000 characters (400 KB in UTF-8): MariaDB's TEXT holds 64 KB.
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")

# Equal under it: what lower() makes equal on the others, letter case alone ("Émile" and
# "émile", not "Emile"), and no trailing-space padding ("bob" and "bob " differ). MariaDB has
# no index on an expression, so its unique indexes are on the column under this collation.
MARIADB_FOLDED_COLLATION = "utf8mb4_uca1400_nopad_as_ci"
MYSQL_FOLDED_COLLATION = "utf8mb4_0900_as_ci"  # MySQL 8's same rule (NO PAD is its default)


def exact_string(length: int) -> TypeEngine[str]:
    """Text compared as written, letter case included (SCIM's caseExact externalId): MySQL's
    default collations fold case, so there it is binary."""
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql")


class FoldedString(TypeDecorator[str]):
    """Text compared without letter case by folded(): a case-insensitive collation on MySQL."""

    impl = String
    cache_ok = True

    @property
    def python_type(self) -> type[str]:
        """Values are strings (TypeDecorator would say ``object``)."""
        return str

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """On MariaDB and MySQL, a VARCHAR in the collation that folds case but not accents."""
        if dialect.name == "mysql":
            is_mariadb = getattr(dialect, "is_mariadb", True)
            collation = MARIADB_FOLDED_COLLATION if is_mariadb else MYSQL_FOLDED_COLLATION
            length = cast("String", self.impl_instance).length
            return dialect.type_descriptor(mysql.VARCHAR(length, collation=collation))
        return dialect.type_descriptor(self.impl_instance)


class folded(ColumnElement[str]):  # noqa: N801 - reads as the SQL function it renders
    """A value without its letter case, as the unique indexes compare: lower(x) on SQLite and
    PostgreSQL; on MySQL x itself, which its column's collation compares without case."""

    inherit_cache = True

    def __init__(self, value: _ColumnExpressionArgument[str] | str) -> None:
        self.value = (
            literal(value, String())
            if isinstance(value, str)
            else coercions.expect(roles.ExpressionElementRole, value)
        )
        self.type = String()

    _traverse_internals = [("value", InternalTraversal.dp_clauseelement)]  # noqa: RUF012


@compiles(folded)
def _folded_lower(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.value, **kw)})"


@compiles(folded, "mysql")
def _folded_mysql(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.value, **kw)


# The trigram indexes migration 0012 makes on PostgreSQL, by name, with the column each
# folds. Not on the models: they exist on one backend, and only where pg_trgm could be
# created, so the migrations' drift check leaves them out (app/migrations/env.py).
SEARCH_INDEXES = {
    "ix_user_account_username_trgm": "username",
    "ix_user_account_email_trgm": "email",
}
SEARCH_INDEX_STATEMENTS = tuple(
    f"CREATE INDEX IF NOT EXISTS {name} ON user_account USING gin (lower({column}) gin_trgm_ops)"
    for name, column in SEARCH_INDEXES.items()
)

# The btree indexes migration 0016 makes on PostgreSQL for prefixes (sw): text_pattern_ops
# compares bytes, so LIKE 'ab%' becomes the range ~>=~ 'ab' AND ~<~ 'ac' on it. The trigram
# index answers a prefix too, but from the posting lists of every trigram in it: "  u", " us"
# are in all 1,000,000 seeded users, and userName sw "user05000" read 1,500 index pages in
# 39 ms against 0.1 ms on this index (EXPLAIN ANALYZE; bench/scim.py's filters). Not on the
# models for the reason above: MariaDB's and SQLite's unique indexes already serve a prefix.
PREFIX_INDEXES = {
    "ix_user_account_username_prefix": "username",
    "ix_user_account_email_prefix": "email",
}
PREFIX_INDEX_STATEMENTS = tuple(
    f"CREATE INDEX IF NOT EXISTS {name} ON user_account (lower({column}) text_pattern_ops)"
    for name, column in PREFIX_INDEXES.items()
)

Match = Literal["contains", "starts", "ends"]
# LIKE's own characters, and the escape we give it, are matched as themselves.
_LIKE_SPECIALS = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
_SURROGATES = range(0xD800, 0xE000)
# SQLite's lower() folds ASCII letters only (no ICU): the prefix range folds as it does.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _after_prefix(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, in code point order
    (SQLite's BINARY, UTF-8 bytes); None where there is none."""
    last = ord(prefix[-1])
    if last == sys.maxunicode:
        return None
    following = _SURROGATES.stop if last + 1 in _SURROGATES else last + 1  # none is text
    return prefix[:-1] + chr(following)


class folded_match(ColumnElement[bool]):  # noqa: N801 - reads as the SQL function it renders
    """``column`` contains (starts with, ends with) ``text``, whatever the letter case of
    either: a LIKE on the folded column, and around it what lets each backend's index serve
    it (the trigram and prefix indexes on PostgreSQL, the unique indexes elsewhere)."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: no "= 1" after it where booleans are ints

    def __init__(
        self,
        column: _ColumnExpressionArgument[str],
        text: str,
        how: Match = "contains",
        *,
        side_index: bool = False,
        common: frozenset[tuple[str, str]] = frozenset(),
    ):
        escaped = text.translate(_LIKE_SPECIALS)
        pattern = {"contains": f"%{escaped}%", "starts": f"{escaped}%", "ends": f"%{escaped}"}[how]
        # Inline, not bound: PostgreSQL plans a bound pattern generically after five runs of
        # a prepared statement, and the generic plan walks the primary key past every row
        # instead of asking the trigram index (478 ms against 16 ms for no match in 200,000
        # users; .venv/bin/python -m bench.search). SQLAlchemy quotes it for the dialect.
        self.matching = folded(column).like(
            folded(literal(pattern, String(), literal_execute=True)), escape="\\"
        )
        # A text too short to hold a trigram (co "ab") gives pg_trgm nothing to look up: GIN
        # then returns every row of the index for a recheck, 1,770 ms for a count over
        # 1,000,000 users, where a (parallel) scan of the table takes 330 (EXPLAIN ANALYZE).
        # So it is strpos(), which no index serves: alone it scans; where the side table is
        # ready, its substrings' index names the candidates (app/db/user_search.py).
        self.short = how == "contains" and len(text) < user_search.SHORTEST_TRIGRAM
        self.unindexed = (
            func.strpos(folded(column), folded(literal(text, String(), literal_execute=True))) > 0
        )
        # SQLite applies its LIKE optimisation to a plain column only, never to the unique
        # index's lower(username): a prefix is said again as a range on lower(), which it does.
        lowest = text.translate(_ASCII_LOWER)
        above = _after_prefix(lowest) if how == "starts" and text else None
        self.ranged = above is not None
        target = folded(column)
        self.range = and_(target >= literal(lowest, String()), target < literal(above, String()))
        # The side table (app/db/user_search.py), where the caller found it ready: on MariaDB
        # for a contains and an ends-with on username or email, which no index of the row
        # serves; on PostgreSQL for a contains shorter than a trigram that is not ``common``
        # (user_search.common: there the scan is faster). Both are built, as the dialect is
        # known only when the statement compiles.
        named = coercions.expect(roles.ExpressionElementRole, column)
        name = getattr(named, "name", None)
        table_ = getattr(named, "table", None)
        on_users = (
            side_index
            and getattr(table_, "name", None) == "user_account"
            and name in user_search.COLUMNS
        )
        self.sided = on_users and user_search.asks("mysql", text, how)
        self.short_sided = (
            on_users
            and user_search.asks("postgresql", text, how)
            and (name, text.lower()) not in common
        )
        self.candidates = (
            candidate_ids(table_.c.id, (name,), text)
            if self.sided and table_ is not None and name is not None
            else true()
        )
        self.short_candidates = (
            candidate_ids(table_.c.id, (name,), text, "postgresql")
            if self.short_sided and table_ is not None and name is not None
            else true()
        )

    _traverse_internals = [  # noqa: RUF012
        ("matching", InternalTraversal.dp_clauseelement),
        ("unindexed", InternalTraversal.dp_clauseelement),
        ("range", InternalTraversal.dp_clauseelement),
        ("short", InternalTraversal.dp_boolean),
        ("ranged", InternalTraversal.dp_boolean),
        ("candidates", InternalTraversal.dp_clauseelement),
        ("sided", InternalTraversal.dp_boolean),
        ("short_candidates", InternalTraversal.dp_clauseelement),
        ("short_sided", InternalTraversal.dp_boolean),
    ]


def candidate_ids(
    user_id: ColumnElement[int], columns: Sequence[str], text: str, dialect: str = "mysql"
) -> ColumnElement[bool]:
    """The user's id among the side table's candidates for ``text`` in any of ``columns``
    on ``dialect`` (app/db/user_search.py): for a caller that ORs several columns'
    folded_match itself."""
    found = user_search.candidates(columns, text, dialect)
    return user_id.in_(found.columns(id=BigInteger()))


@compiles(folded_match)
def _folded_match(element: folded_match, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.matching, **kw)


@compiles(folded_match, "postgresql")
def _folded_match_postgresql(element: folded_match, compiler: SQLCompiler, **kw: Any) -> str:
    if not element.short:
        return compiler.process(element.matching.self_group(), **kw)
    if not element.short_sided:
        return compiler.process(element.unindexed.self_group(), **kw)
    return compiler.process(and_(element.unindexed, element.short_candidates).self_group(), **kw)


@compiles(folded_match, "mysql")
def _folded_match_mysql(element: folded_match, compiler: SQLCompiler, **kw: Any) -> str:
    if not element.sided:
        return compiler.process(element.matching, **kw)
    return compiler.process(and_(element.matching, element.candidates).self_group(), **kw)


@compiles(folded_match, "sqlite")
def _folded_match_sqlite(element: folded_match, compiler: SQLCompiler, **kw: Any) -> str:
    if not element.ranged:
        return compiler.process(element.matching, **kw)
    return compiler.process(and_(element.range, element.matching).self_group(), **kw)


def insert_for(backend: Backend, table: Any, *, skip_conflicts: bool = False) -> Insert:
    """An INSERT into ``table``; with ``skip_conflicts`` rows a unique index refuses are left
    out (ON CONFLICT DO NOTHING; MariaDB's INSERT IGNORE, which RETURNING then omits)."""
    if backend == "mysql":
        statement = mysql.insert(table)
        return statement.prefix_with("IGNORE") if skip_conflicts else statement
    dialect_insert = postgresql.insert(table) if backend == "postgresql" else sqlite.insert(table)
    return dialect_insert.on_conflict_do_nothing() if skip_conflicts else dialect_insert
