"""Where rows go: the Target every backend's loader keeps, and the move out of staging.

postgres_target streams rows by COPY through asyncpg; sqlalchemy_target inserts them by
executemany on the app's engine (SQLite, MariaDB).
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from sqlalchemy import or_, select
from sqlalchemy.sql import Executable

from app.config import Backend
from app.db.types import insert_for
from app.models import User
from app.services.bulk.judging import Row, verdict, verdict_problems


class Target(ABC):
    """Where an import's rows go, in a transaction of its own, for one ``with`` block.

    The calls come in this order: ``load`` each chunk of rows; ``end_load``; then, if
    ``created_directly`` is not None, ``commit`` at once; else the judging statements and the
    move (``execute``, ``fetch``, ``execute_unless_taken``), then ``commit``. Any call out of
    this order raises RuntimeError. Leaving the block rolls back whatever was not committed.

    This class keeps the block itself: entering calls ``_open``, and ``_release`` if that
    fails; leaving calls ``_roll_back``, then ``_release`` whatever came of it.
    """

    def __init__(self, direct: bool) -> None:
        """Make a target for one block; ``direct``: load straight into user_account if it can."""
        self._want_direct = direct
        # True from a successful __enter__ until __exit__: what "in a block already" means.
        self._in_block = False
        self._loading = False
        self._created_directly: int | None = None

    def __enter__(self) -> Self:
        """Acquire the connections, begin their transactions and create the staging table.

        Called once, by ``with`` (RuntimeError if the target is in a block already). Raises
        the database's error if any of it fails, after giving back what it had acquired.
        """
        if self._in_block:
            msg = "a target is entered once"
            raise RuntimeError(msg)
        try:
            self._open()
        except BaseException:
            self._release()
            raise
        self._in_block = True
        self._loading = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed, then give back every connection.

        Called once when the block is left, by an exception or not, and whether or not
        ``commit`` was called or failed: an unfinished load is abandoned (a COPY is aborted
        without waiting for its rows to be stored), and what ``commit`` already ended is not
        ended again. Suppresses nothing; a failure of the rollback itself (a lost
        connection) is raised once the connections are given back.
        """
        self._loading = False
        try:
            self._roll_back()
        finally:
            self._in_block = False
            self._release()

    @abstractmethod
    def _open(self) -> None:
        """Do the work of ``__enter__``: acquire, begin, create the staging table, ready the load.

        Keeps what it acquires on the target as it goes, so that ``_release``, called by
        ``__enter__`` if this raises, gives all of it back.
        """

    @abstractmethod
    def _roll_back(self) -> None:
        """Do the rollback of ``__exit__``: abandon an unfinished load, end what is not committed.

        Leaves alone what ``commit`` already ended. Its error, if any, is raised by
        ``__exit__`` after ``_release``.
        """

    @abstractmethod
    def _release(self) -> None:
        """Give back every connection and scratch file the target holds, and forget them.

        Called after ``_roll_back`` on leaving the block, and on entering it if ``_open``
        failed, whatever it got to; with nothing held, it does nothing.
        """

    @abstractmethod
    def load(self, rows: list[Row]) -> None:
        """Send one chunk of validated rows, in file order; an empty chunk is allowed.

        Called any number of times, before ``end_load``. The rows are staged, or, when the
        target was made ``direct`` and can, written straight into user_account, whose
        unique indexes then judge them: a violation there is not raised; the direct write
        is rolled back and every row staged instead (by ``end_load`` at the latest).
        Nothing is committed. Raises the database's error (a lost connection, a deadline),
        after which the block must be left.
        """
        ...

    @abstractmethod
    def end_load(self) -> None:
        """Wait until every row sent is stored; stage them all if a direct load failed.

        Called once, after the last ``load`` and before any statement or ``commit``; called
        again, it does nothing. Raises the database's error, after which the block must be
        left.
        """
        ...

    @property
    def created_directly(self) -> int | None:
        """The users the load wrote straight into user_account, or None if it staged rows.

        Changes nothing; read after ``end_load`` (RuntimeError before). A number means the
        whole file went in without a violation: ``commit`` keeps exactly those rows and no
        statement is needed. None means the staging table holds every loaded row, to judge
        and move by statements.
        """
        check_loading(self._loading, expected=False)
        return self._created_directly

    @abstractmethod
    def execute(self, statement: Executable) -> int:
        """Run a statement in the import's transaction; return the number of rows it wrote.

        Called after ``end_load`` and before ``commit``. Raises the database's error: a unique
        index refusing a row raises IntegrityError (SQLAlchemy) or
        asyncpg.UniqueViolationError (PostgreSQL), after which the block must be left
        without ``commit``. Nothing is committed.
        """
        ...

    @abstractmethod
    def execute_unless_taken(self, statement: Executable) -> int | None:
        """Run a statement in a savepoint; return None, undone, if a unique index refuses a row.

        As ``execute``, except that a unique violation rolls back to the savepoint and
        returns None, leaving the transaction usable. Other errors are raised as by
        ``execute``.
        """
        ...

    @abstractmethod
    def fetch(self, statement: Executable) -> list[tuple[Any, ...]]:
        """Run a query in the import's transaction; return all its rows as tuples.

        Called after ``end_load`` and before ``commit``; sees what the load and earlier
        statements wrote. Raises the database's error, after which the block must be left.
        """
        ...

    @abstractmethod
    def commit(self, event: Mapping[str, Any] | None = None) -> None:
        """Commit the import: the direct load's transaction if it held, else the staging one,
        with ``event`` (the import's change event, app.services.events) in it if given.

        Called at most once, after ``end_load``, as the last call of the block. The staging
        table and other scratch are dropped, never kept. If it raises, whether the rows
        were kept is the database's answer (a connection lost during COMMIT may have
        committed); leaving the block then only gives the connections back.
        """
        ...


# The same misuse gets the same message from every target, and fails loudly instead of a
# statement running beside a COPY or outside the import's transaction.
OUTSIDE_BLOCK = "the target is used outside its with block, or after commit()"


def check_loading(loading: bool, *, expected: bool) -> None:
    """Raise RuntimeError unless the target is loading (expected) or done loading (not)."""
    if loading != expected:
        msg = "the import's load has ended" if expected else "end_load() must come first"
        raise RuntimeError(msg)


# Rows of a direct import, kept in case a violation needs them staged: in memory up to
# this size, then in a temporary file, so memory stays flat for any size of file. The targets
# read it here at each import, so a test can make it small.
SPOOL_MEMORY = 16 << 20


def move_rows(backend: Backend, *, skip_conflicts: bool = False) -> Executable:
    """Insert, in file order, the lines that duplicate_lines does not name.

    A plain INSERT: ``ON CONFLICT DO NOTHING`` costs PostgreSQL a speculative insertion per
    row (measured: 1.9 s against 1.0 s for 100,000 rows), needed only with
    ``skip_conflicts``, when another writer took one of these names after classify.
    """
    fresh = ~or_(*(condition for condition, _ in verdict_problems()))
    rows = select(verdict.c.username, verdict.c.email).where(fresh).order_by(verdict.c.line)
    return insert_for(backend, User, skip_conflicts=skip_conflicts).from_select(
        ["username", "email"], rows
    )
