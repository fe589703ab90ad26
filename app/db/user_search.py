"""MariaDB's index for a contains (and an ends-with) on usernames and emails: a Mroonga side
table that the worker fills after the commit, and searches that ask it for the users it has
reached and also read, by an ordinary index, the users changed since (migration 0017).

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
Measured over 1,000,000 users in docs/explanation/databases.md.
"""

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, text
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

_MARK_VALUE = f"SELECT indexed_until FROM {MARK} WHERE id = 1"  # noqa: S608
_READ_MARK = text(_MARK_VALUE)
_COPY = text(
    f"REPLACE INTO {TABLE} (id, username, email) VALUES (:id, :username, :email)"  # noqa: S608
)
_MOVE_MARK = text(
    f"UPDATE {MARK} SET indexed_until = :new WHERE id = 1 AND indexed_until < :new"  # noqa: S608
)
_INDEXABLE = re.compile(r"[A-Za-z0-9@._+'-]+")
_COPY_BATCH = 5000


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
    found Mroonga. Asked once an engine (migrate() forgets the answer)."""
    if engine.dialect.name != "mysql":
        return False
    known = _ready.get(engine)
    if known is None:
        with engine.connect() as connection:
            known = (
                connection.execute(
                    text(
                        "SELECT 1 FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"
                    ),
                    {"name": MARK},
                ).first()
                is not None
            )
        _ready[engine] = known
    return known


def forget(engine: Engine) -> None:
    """Ask again at the next search (the schema may just have gained or lost the table)."""
    _ready.pop(engine, None)


def indexable(wanted: str) -> bool:
    """Whether the side table can name every user whose column contains ``wanted``."""
    return _INDEXABLE.fullmatch(wanted) is not None


def candidates(columns: Sequence[str], wanted: str) -> TextClause:
    """The ids of the users whose ``columns`` may contain ``wanted``: the side table's matches
    on any of them and every user changed since its watermark (a superset; the caller's
    LIKE decides).

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
            f"SELECT id FROM {TABLE} WHERE MATCH({column}) AGAINST(:phrase IN BOOLEAN MODE)"  # noqa: S608
        )
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
