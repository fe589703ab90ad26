"""MariaDB's index for a contains (and an ends-with) on usernames and emails, and
PostgreSQL's for a contains shorter than a trigram: a side table that the worker fills after
the commit, and searches that ask it for the users it has reached and also read, by an
ordinary index, the users changed since (migrations 0017 and 0019).

Exact at every moment, so a search returns what the plain LIKE scan returns:

- The side table (``user_search``) holds, per user id, the username and email as the worker
  last copied them, with a bigram index on each. It only names candidates: the LIKE on the
  user's own row decides, so a stale entry (a user renamed or deleted since) costs a lookup,
  never a wrong answer. Ids are never reused (``IDS_NEVER_REUSED``), so a deleted user's
  entry names nobody, and deletes need no marker.
- The marker of "changed since" is ``updated_at``, which every write of a user sets (the
  column's ``onupdate``; a create and every import row take its default), with an index on it
  (``ix_user_account_updated_at``). ``user_search_mark.indexed_until`` is the watermark:
  every user whose row has ``updated_at`` below it is in the side table as it is now. A
  search's candidates are the side table's matches plus every user at or above it: an
  import of 100,000 users is searched through this range until the worker reaches it. A
  rolled-back write leaves no row to find; an index entry the worker wrote for a row is
  never for an uncommitted one (it reads a consistent snapshot).
- ``updated_at`` is the statement's time, not the commit's: a transaction can commit a row
  stamped before a watermark set while it ran. So the worker's new watermark is below the
  start of every transaction open when it takes its snapshot (InnoDB's ``INNODB_TRX``,
  which needs the PROCESS privilege), less a second for the moment between a statement's
  clock and its transaction's start; then it copies every row at or above the old watermark
  from a snapshot taken after that, and only then moves the watermark.

Mroonga is not transactional: the copy is ``REPLACE`` by id, repeatable after a failure, and
the watermark, an InnoDB row, moves only after the copy. Only texts of letters, digits and
``@ . _ + - '`` ask the index: Mroonga's NormalizerAuto (NFKC, then lower case) and the
columns' collation agree on those, and not on every letter (Greek final sigma), nor quote.

PostgreSQL (migration 0019): pg_trgm's index serves a contains of 3 characters or more; a
shorter text has no trigram to look up. There the side table holds, per user id, the 1- and
2-character substrings of ``lower(username)`` and of ``lower(email)`` as stored ``text[]``
with a GIN index on each, and ``co "ab"`` asks ``username_grams @> ARRAY['ab']``. Stored, not
an index on a function of user_account's row: that one made bulk inserts 3.4x slower, and
where most users hold the text the planner scanned and computed the function per row (6.8 s
against 0.23; databases.md). A scan of the side table compares arrays, and ANALYZE gives
the planner each substring's frequency. The round is one transaction, since the table is
transactional: the copy (``INSERT ... SELECT`` with the substrings made by the server) and
the watermark move commit together, and an advisory lock keeps rounds one at a time (two
interleaved could write an older snapshot's substrings over a newer one's). Its watermark is
the earlier of now and the start (``pg_stat_activity.xact_start``) of every other open
transaction of the database, less a second, read before the copy's snapshot: a transaction
begun after that read stamps its rows later. A session the worker's role may not see
(another role's, without pg_read_all_stats) holds the watermark where it is. The same
texts as on MariaDB ask it (ASCII, so lower() keeps their length), others scan, and so do
the substrings 0.5% of users or more hold (``common``): reading the side table for them is
slower than the scan.
Measured over 1,000,000 users in docs/explanation/databases.md.
"""

import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.sql.elements import TextClause

from app.config import Settings
from app.db.deadlines import bulk_deadlines

TABLE = "user_search"
MARK = "user_search_mark"
UPDATED_INDEX = "ix_user_account_updated_at"
COLUMNS = ("username", "email")
# Below every updated_at: before the worker's first round every user is "changed since".
NEVER = datetime(1000, 1, 1)  # noqa: DTZ001 - MariaDB's DATETIME has no zone; ours are UTC

# Bigrams, symbols and digits as tokens of their own, so one and two characters are found.
_TOKENS = 'tokenizer "TokenBigramSplitSymbolAlphaDigit", normalizer "NormalizerAuto"'
CREATE_STATEMENTS = (
    f"CREATE TABLE {TABLE} (id BIGINT NOT NULL PRIMARY KEY, "
    "username VARCHAR(80) NOT NULL, email VARCHAR(254) NOT NULL, "
    f"FULLTEXT INDEX ft_{TABLE}_username (username) COMMENT '{_TOKENS}', "
    f"FULLTEXT INDEX ft_{TABLE}_email (email) COMMENT '{_TOKENS}') "
    "ENGINE=Mroonga DEFAULT CHARSET=utf8mb4",
    f"CREATE TABLE {MARK} (id TINYINT NOT NULL PRIMARY KEY, indexed_until DATETIME(6) NOT NULL)"
    " ENGINE=InnoDB",
    f"INSERT INTO {MARK} (id, indexed_until) VALUES (1, '{NEVER.isoformat(' ')}')",  # noqa: S608
    f"CREATE INDEX {UPDATED_INDEX} ON user_account (updated_at)",
)
DROP_STATEMENTS = (
    f"DROP INDEX IF EXISTS {UPDATED_INDEX} ON user_account",
    f"DROP TABLE IF EXISTS {MARK}",
    f"DROP TABLE IF EXISTS {TABLE}",
)
TABLES = (TABLE, MARK)

# PostgreSQL's (migration 0019): the substrings pg_trgm cannot look up, under 3 characters.
SHORTEST_TRIGRAM = 3
CHANGED = "user_search_changed"
_MARK_VALUE = f"SELECT indexed_until FROM {MARK} WHERE id = 1"  # noqa: S608
_NEVER_SQL = f"'{NEVER.isoformat(' ')}+00'"
POSTGRESQL_CREATE_STATEMENTS = (
    f"CREATE TABLE {TABLE} (id BIGINT NOT NULL PRIMARY KEY, "
    "username_grams TEXT[] NOT NULL, email_grams TEXT[] NOT NULL)",
    *(
        f"CREATE INDEX ix_{TABLE}_{column}_grams ON {TABLE} USING gin ({column}_grams)"
        for column in COLUMNS
    ),
    f"CREATE TABLE {MARK} (id SMALLINT NOT NULL PRIMARY KEY, indexed_until TIMESTAMPTZ NOT NULL)",
    f"INSERT INTO {MARK} (id, indexed_until) VALUES (1, {_NEVER_SQL})",  # noqa: S608
    f"CREATE INDEX IF NOT EXISTS {UPDATED_INDEX} ON user_account (updated_at)",
    # The users changed since the watermark, as a function: compared with a subquery's value,
    # updated_at is estimated at a third of the table (the planner cannot know the value), and
    # a search then hashes a scan of every user; here the range is planned with the value (by
    # the updated_at index), and the caller's plan counts on few rows.
    f"CREATE FUNCTION {CHANGED}() RETURNS SETOF BIGINT LANGUAGE plpgsql STABLE ROWS 100 AS $$ "  # noqa: S608
    f"DECLARE since TIMESTAMPTZ := ({_MARK_VALUE}); "
    "BEGIN RETURN QUERY EXECUTE 'SELECT id FROM user_account WHERE updated_at >= $1' "
    "USING since; END $$",
)
POSTGRESQL_DROP_STATEMENTS = (
    f"DROP FUNCTION IF EXISTS {CHANGED}()",
    f"DROP INDEX IF EXISTS {UPDATED_INDEX}",
    f"DROP TABLE IF EXISTS {MARK}",
    f"DROP TABLE IF EXISTS {TABLE}",
)

_READ_MARK = text(_MARK_VALUE)
_COPY = text(
    f"REPLACE INTO {TABLE} (id, username, email) VALUES (:id, :username, :email)"  # noqa: S608
)
_MOVE_MARK = text(
    f"UPDATE {MARK} SET indexed_until = :new WHERE id = 1 AND indexed_until < :new"  # noqa: S608
)
_INDEXABLE = re.compile(r"[A-Za-z0-9@._+'-]+")
_COPY_BATCH = 5000


def _grams(column: str) -> str:
    # Every 1- and 2-character substring of the folded column, once each.
    folded = f"lower({column})"
    return (
        f"ARRAY(SELECT DISTINCT substr({folded}, i, n) FROM generate_series(1, 2) AS n, "  # noqa: S608
        f"generate_series(1, length({folded}) - n + 1) AS i)"
    )


_PG_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(:name))")
# Other sessions of this database: their open transactions' starts, or, for one the role
# may not see (its query hidden), the old watermark, which then does not move. All
# but autovacuum's workers, whose transactions write no user and may last minutes, during
# which the watermark would stand still (IS DISTINCT: a hidden session's type may be NULL).
_PG_WATERMARK = text(
    "SELECT LEAST(statement_timestamp(), min(CASE WHEN query = '<insufficient privilege>' "
    "THEN CAST(:old AS timestamptz) ELSE xact_start END)) - INTERVAL '1 second' "
    "FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
    "AND backend_type IS DISTINCT FROM 'autovacuum worker' "
    "AND datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_PG_COPY = text(
    f"INSERT INTO {TABLE} (id, username_grams, email_grams) "  # noqa: S608
    f"SELECT id, {_grams('username')}, {_grams('email')} FROM user_account "
    "WHERE updated_at >= :old ON CONFLICT (id) DO UPDATE SET "
    "username_grams = excluded.username_grams, email_grams = excluded.email_grams"
)


def mroonga_installed(connection: Connection) -> bool:
    """Whether this MariaDB server has the Mroonga engine (the plugin is installed)."""
    found = connection.execute(
        text(
            "SELECT 1 FROM information_schema.ENGINES "
            "WHERE ENGINE = 'Mroonga' AND SUPPORT IN ('YES', 'DEFAULT')"
        )
    ).first()
    return found is not None


_ready: "WeakKeyDictionary[Engine, bool]" = WeakKeyDictionary()


def ready(engine: Engine) -> bool:
    """Whether searches on ``engine`` may ask the side table: MariaDB where migration 0017
    found Mroonga, PostgreSQL after migration 0019. Asked once an engine (migrate() forgets
    the answer)."""
    if engine.dialect.name not in ("mysql", "postgresql"):
        return False
    known = _ready.get(engine)
    if known is None:
        with engine.connect() as connection:
            known = (
                connection.execute(
                    text(
                        "SELECT 1 FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = (SELECT current_schema()) AND TABLE_NAME = :name"
                        if engine.dialect.name == "postgresql"
                        else "SELECT 1 FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"
                    ),
                    {"name": MARK},
                ).first()
                is not None
            )
        _ready[engine] = known
    return known


# ANALYZE's most common elements of the side table's columns with their share of the rows
# (the last three numbers are no element's: unnest pairs them with NULL). Reread once a
# minute a process.
_COMMON = text(
    "SELECT attname, element FROM pg_stats, "
    "unnest(most_common_elems::text::text[], most_common_elem_freqs) AS x(element, share) "
    "WHERE schemaname = current_schema() AND tablename = :table AND element IS NOT NULL "
    "AND share >= :share"
)
_COMMON_SHARE = 0.005
_COMMON_FOR = 60.0
_common: "WeakKeyDictionary[Engine, tuple[float, frozenset[tuple[str, str]]]]" = WeakKeyDictionary()


def common(engine: Engine) -> frozenset[tuple[str, str]]:
    """The (column, substring) pairs that 0.5% of users or more hold by the side table's
    statistics, on PostgreSQL: a contains of one of them scans rather than asks the side
    table.

    Reading the side table costs what it finds: a substring held by 1% of 1,000,000 users
    (``t0`` in the seeded emails) took 0.74 s for the count through it against 0.30 s for
    the scan, 4.4% (``77``) 0.82 s against 0.31, every user (``us``) 2.3 s against 0.33
    (EXPLAIN ANALYZE; 480 bytes a row of substrings make its pages many), none (``ab``)
    3 ms. Right either way: this chooses only the faster."""
    if engine.dialect.name != "postgresql":
        return frozenset()
    now = time.monotonic()
    known = _common.get(engine)
    if known is None or now - known[0] > _COMMON_FOR:
        with engine.connect() as connection:
            rows = connection.execute(_COMMON, {"table": TABLE, "share": _COMMON_SHARE})
            found = frozenset((row.attname.removesuffix("_grams"), row.element) for row in rows)
        known = (now, found)
        _common[engine] = known
    return known[1]


def forget(engine: Engine) -> None:
    """Ask again at the next search (the schema may just have gained or lost the table)."""
    _ready.pop(engine, None)
    _common.pop(engine, None)


def indexable(wanted: str) -> bool:
    """Whether the side table can name every user whose column contains ``wanted``."""
    return _INDEXABLE.fullmatch(wanted) is not None


def asks(dialect: str, wanted: str, how: str = "contains") -> bool:
    """Whether a search on ``dialect`` for ``wanted`` (contained, or at the end) asks the side
    table: MariaDB's for a contains and an ends-with; PostgreSQL's for a contains shorter than
    a trigram (pg_trgm serves the others, and the prefix indexes a start)."""
    if not indexable(wanted) or how == "starts":
        return False
    if dialect == "postgresql":
        return how == "contains" and len(wanted) < SHORTEST_TRIGRAM
    return dialect == "mysql"


def candidates(columns: Sequence[str], wanted: str, dialect: str = "mysql") -> TextClause:
    """The ids of the users whose ``columns`` may contain ``wanted``: the side table's matches
    on any of them and every user changed since its watermark (a superset; the caller's
    LIKE or strpos decides).

    On PostgreSQL the text (1 or 2 characters) is one of the stored substrings, inline (a
    prepared statement's generic plan would not know a common one from a rare one); IN over
    the UNION is a join, which the planner makes a lookup of the few candidates by primary
    key or, for a text most users hold, a hash join beside a scan of both tables.

    A derived table inside IN: MariaDB materializes it once and joins the users by primary
    key; a UNION straight inside IN is run again for every user, an OR beside the IN is a
    scan (EXPLAIN over 1,000,000 users: 8 ms against 0.62 s and 1.34 s). Under an OR (two
    such INs, or an OR with anything else) MariaDB probes it for every user: 2.0 s against
    the scan's 0.97 for /users?q= as two, 0.06 s as one IN of both columns' matches."""
    matches = []
    for column in columns:
        if column not in COLUMNS:
            raise ValueError(column)
        matches.append(
            f"SELECT id FROM {TABLE} WHERE {column}_grams @> ARRAY[lower(:gram)]"  # noqa: S608
            if dialect == "postgresql"
            else f"SELECT id FROM {TABLE} WHERE MATCH({column}) AGAINST(:phrase IN BOOLEAN MODE)"  # noqa: S608
        )
    if dialect == "postgresql":
        # UNION, not UNION ALL: the planner counts its rows as distinct, where it guesses
        # 200 ids out of UNION ALL's and then probes the users one by one (co "us", every
        # user: past the 5 s statement timeout; EXPLAIN ANALYZE over 1,000,000 users).
        union = " UNION ".join([*matches, f"SELECT id FROM {CHANGED}() AS id"])  # noqa: S608
        return text(union).bindparams(bindparam("gram", wanted, literal_execute=True))
    changed = f"SELECT id FROM user_account WHERE updated_at >= ({_MARK_VALUE})"  # noqa: S608
    union = " UNION ALL ".join([*matches, changed])
    found = f"SELECT id FROM ({union}) AS candidate"  # noqa: S608
    return text(found).bindparams(phrase=f'"{wanted}"')


def _watermark(connection: Connection) -> datetime:
    # INNODB_TRX's times are in the session's zone, as NOW() is; updated_at is UTC.
    found: datetime = connection.execute(
        text(
            "SELECT LEAST(UTC_TIMESTAMP(6), COALESCE(MIN(trx_started) + INTERVAL "
            "TIMESTAMPDIFF(MICROSECOND, NOW(6), UTC_TIMESTAMP(6)) MICROSECOND, "
            "UTC_TIMESTAMP(6))) - INTERVAL 1 SECOND FROM information_schema.INNODB_TRX"
        )
    ).scalar_one()
    return found


def catch_up(engine: Engine, settings: Settings | None = None) -> int:
    """Copy the users changed since the watermark into the side table, then move the
    watermark; the number of users copied. Several workers may run it at once: each copy is
    of committed rows, and the watermark only moves up. With the app's ``settings``, the
    connections get bulk deadlines: the first copy of 1,000,000 users took 64 s."""
    if engine.dialect.name == "postgresql":
        return _catch_up_postgresql(engine, settings)
    copied = 0
    with engine.connect() as opened, engine.connect() as other:
        reader = opened.execution_options(isolation_level="REPEATABLE READ")
        writer = other.execution_options(isolation_level="AUTOCOMMIT")
        if settings is not None:
            bulk_deadlines(reader, settings)
            bulk_deadlines(writer, settings)
        old = writer.execute(_READ_MARK).scalar_one()
        new = _watermark(writer)
        # The snapshot after the new watermark: every row below it has committed by now.
        reader.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        rows = reader.execution_options(stream_results=True).execute(
            text("SELECT id, username, email FROM user_account WHERE updated_at >= :old"),
            {"old": old},
        )
        for batch in rows.partitions(_COPY_BATCH):
            values: list[dict[str, Any]] = [row._asdict() for row in batch]
            writer.execute(_COPY, values)
            copied += len(values)
        reader.rollback()
        writer.execute(_MOVE_MARK, {"new": new})
    return copied


def _catch_up_postgresql(engine: Engine, settings: Settings | None) -> int:
    # One transaction (READ COMMITTED: the copy's statement takes its snapshot after the
    # watermark's read); a round already under way elsewhere makes this one do nothing.
    with engine.connect() as connection:
        with connection.begin():
            if settings is not None:
                bulk_deadlines(connection, settings)
            if not connection.execute(_PG_LOCK, {"name": TABLE}).scalar_one():
                return 0
            old = connection.execute(_READ_MARK).scalar_one()
            new = connection.execute(_PG_WATERMARK, {"old": old}).scalar_one()
            copied: int = connection.execute(_PG_COPY, {"old": old}).rowcount
            connection.execute(_MOVE_MARK, {"new": new})
        if old.year == NEVER.year:
            # The first copy fills the table: element statistics now, not at autovacuum's
            # next look, or the planner takes a text most users hold for a rare one.
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                f"ANALYZE {TABLE}"
            )
    return copied
