"""Where rows go: a staging table (by COPY or executemany), then user_account."""

import json
import tempfile
from typing import IO, Any, Protocol

import asyncpg
from sqlalchemy import Connection, NestedTransaction, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql import Executable

from app.config import Backend, current_settings
from app.db import asyncpg_pool as pg
from app.db.copy_in import CopyIn
from app.db.engines import bulk_deadlines
from app.db.session import db
from app.db.types import insert_for
from app.models import User
from app.services.bulk.judging import FIELDS, Row, staging, verdict, verdict_problems


class Target(Protocol):
    def execute(self, statement: Executable) -> int: ...
    def execute_unless_taken(self, statement: Executable) -> int | None: ...
    def fetch(self, statement: Executable) -> list[tuple[Any, ...]]: ...
    def load(self, rows: list[Row]) -> None: ...
    def loaded_directly(self) -> int | None: ...
    def finish(self, commit: bool) -> None: ...


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: list[Row], *, line: bool) -> bytes:
    """Format rows for COPY in text format: (line,) username, email; tab-separated."""
    if line:
        text = "".join([f"{n}\t{u}\t{e}\n" for n, u, e in rows])
    else:
        text = "".join([f"{u}\t{e}\n" for _, u, e in rows])
    # Validation lets no tab, newline or carriage return through and backslashes are rare:
    # when the separators are all there are, no field needs escaping.
    tabs = len(rows) * (2 if line else 1)
    if text.count("\t") != tabs or text.count("\n") != len(rows) or "\\" in text or "\r" in text:
        escaped = [(n, u.translate(_COPY_ESCAPES), e.translate(_COPY_ESCAPES)) for n, u, e in rows]
        if line:
            text = "".join([f"{n}\t{u}\t{e}\n" for n, u, e in escaped])
        else:
            text = "".join([f"{u}\t{e}\n" for _, u, e in escaped])
    return text.encode()


# Rows of a direct import, kept in case a violation needs them staged: in memory up to
# this size, then in a temporary file, so memory stays flat for any size of file.
SPOOL_MEMORY = 16 << 20


class PostgresTarget:
    """Pooled asyncpg connections, each in one transaction; rows arrive by streamed COPY.

    Rows are copied into the staging table. With ``direct`` (error mode) and a second
    connection free, they are instead copied straight into user_account on that one and
    spooled aside: its unique indexes catch every duplicate, so a clean file needs no
    further statement and PostgreSQL does one COPY's work, as a bare COPY would, while
    this thread parses the next rows. After a violation that transaction is rolled back,
    the spooled rows are staged, and the staging table tells which lines were at fault.
    """

    def __init__(self, direct: bool) -> None:
        self._pool = pg.current_pool()
        self._direct_conn: pg.Connection | None = None
        self._staged: CopyIn | None = None
        self._direct: CopyIn | None = None
        self._spool: IO[bytes] | None = None
        self._loading = True
        self._copied = 0
        settings = self._pool.settings
        # Every call of the import may take as long as the bulk deadline, not a request's.
        self._timeout = settings.DB_BULK_TIMEOUT
        self._bulk = pg.set_local(settings, bulk=True)
        self._conn = pg.run_blocking(self._pool.acquire())
        try:
            self._tx = self._conn.transaction()
            pg.run_blocking(self._tx.start())
            pg.run_blocking(self._conn.execute(self._bulk))
            pg.run_blocking(
                self._conn.execute(str(CreateTable(staging).compile(dialect=pg.DIALECT)))
            )
            if direct:
                self._direct_conn = pg.run_blocking(self._pool.acquire_spare())
            if self._direct_conn is not None:
                self._direct_tx = self._direct_conn.transaction()
                pg.run_blocking(self._direct_tx.start())
                pg.run_blocking(self._direct_conn.execute(self._bulk))
        except BaseException:
            self._release()
            raise
        if self._direct_conn is None:
            self._staged = self._staging_copy()
        else:
            self._direct = CopyIn(
                self._direct_conn, User.__tablename__, list(FIELDS), self._timeout
            )
            self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115

    def _staging_copy(self) -> CopyIn:
        columns = [c.name for c in staging.columns]
        return CopyIn(self._conn, staging.name, columns, self._timeout)

    def load(self, rows: list[Row]) -> None:
        if not self._loading:
            msg = "the import's COPY has ended"
            raise RuntimeError(msg)
        text = copy_text(rows, line=True)
        if self._staged is not None:
            self._staged.send(text)
            return
        if self._spool is not None:
            self._spool.write(text)
        if self._direct is not None:
            try:
                self._direct.send(copy_text(rows, line=False))
            except asyncpg.UniqueViolationError:
                self._direct = None
                self._end_direct(commit=False)

    def _end_copies(self, *, abort: bool = False) -> None:
        self._loading = False
        staged, self._staged = self._staged, None
        direct, self._direct = self._direct, None
        if abort:
            # Nothing will be kept: the server need not store what is still on its way.
            for copy in (staged, direct):
                if copy is not None:
                    copy.abort()
            return
        try:
            if staged is not None:
                staged.close()
        finally:
            if direct is not None:
                try:
                    self._copied = direct.close()
                except asyncpg.UniqueViolationError:
                    # A duplicate, in the file or not: diagnosed from the staging table.
                    self._end_direct(commit=False)
        if self._spool is not None and self._direct_conn is None:
            spool, self._spool = self._spool, None
            self._stage_spooled(spool)

    def _stage_spooled(self, spool: IO[bytes]) -> None:
        with spool:
            spool.seek(0)
            copy = self._staging_copy()
            try:
                while lines := spool.readlines(1 << 20):
                    copy.send(b"".join(lines))
            except BaseException:
                copy.abort()
                raise
            copy.close()

    def _end_direct(self, commit: bool) -> None:
        if self._direct_conn is not None:
            conn, self._direct_conn = self._direct_conn, None
            try:
                pg.run_blocking(self._direct_tx.commit() if commit else self._direct_tx.rollback())
            finally:
                pg.run_blocking(self._pool.release(conn))

    def loaded_directly(self) -> int | None:
        self._end_copies()
        return self._copied if self._direct_conn is not None else None

    def execute(self, statement: Executable) -> int:
        self._end_copies()
        sql, args = pg.compile_query(statement)  # type: ignore[arg-type]
        status = pg.run_blocking(self._conn.execute(sql, *args, timeout=self._timeout))
        return pg.row_count(status)

    def execute_unless_taken(self, statement: Executable) -> int | None:
        """Execute in a savepoint; None, with nothing done, if a unique index refused a row."""
        self._end_copies()
        sql, args = pg.compile_query(statement)  # type: ignore[arg-type]

        async def attempt() -> str | None:
            try:
                async with self._conn.transaction():  # nested: a savepoint
                    return await self._conn.execute(sql, *args, timeout=self._timeout)
            except asyncpg.UniqueViolationError:
                return None

        status = pg.run_blocking(attempt())
        return None if status is None else pg.row_count(status)

    def fetch(self, statement: Executable) -> list[tuple[Any, ...]]:
        self._end_copies()
        sql, args = pg.compile_query(statement)  # type: ignore[arg-type]
        rows = pg.run_blocking(self._conn.fetch(sql, *args, timeout=self._timeout))
        return [tuple(r) for r in rows]

    def finish(self, commit: bool) -> None:
        try:
            try:
                self._end_copies(abort=not commit)
            finally:
                # With the direct copy alive, it holds the import and staging is scratch.
                direct = self._direct_conn is not None
                self._end_direct(commit)
                staged = commit and not direct
                pg.run_blocking(self._tx.commit() if staged else self._tx.rollback())
        finally:
            self._release()

    def _release(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        for conn in (self._direct_conn, self._conn):
            if conn is not None:
                pg.run_blocking(self._pool.release(conn))
        self._direct_conn = None


class SqlAlchemyTarget:
    """A connection of the app's engine in one transaction; rows arrive by executemany.

    With ``direct`` (error mode) rows go straight into user_account, in a savepoint, and are
    spooled aside: its unique indexes catch every duplicate, so a clean file needs no
    further statement (MariaDB, bench/import_mariadb.py: 39,000 rows/s over HTTP against
    23,000 staging, classifying and moving; bare multi-row INSERTs 54,000). After a violation
    the savepoint is rolled back, the spooled rows are staged, and the staging table tells
    which lines were at fault.
    """

    def __init__(self, direct: bool = False) -> None:
        self._conn: Connection = db.engine.connect()
        self._tx = self._conn.begin()
        bulk_deadlines(self._conn, current_settings())
        self._drop_scratch()
        self._conn.execute(CreateTable(staging))
        self._direct: NestedTransaction | None = self._conn.begin_nested() if direct else None
        self._spool: IO[str] | None = (
            tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, mode="w+")  # noqa: SIM115
            if direct
            else None
        )
        self._inserted = 0

    def _drop_scratch(self) -> None:
        # SQLite's temporary tables live as long as the connection, which the pool keeps.
        for table in (verdict, staging):
            self._conn.execute(DropTable(table, if_exists=True))

    def execute(self, statement: Executable) -> int:
        return int(self._conn.execute(statement).rowcount)

    def execute_unless_taken(self, statement: Executable) -> int | None:
        """Execute in a savepoint; None, with nothing done, if a unique index refused a row."""
        try:
            with self._conn.begin_nested():
                return int(self._conn.execute(statement).rowcount)
        except IntegrityError:
            return None

    def fetch(self, statement: Executable) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._conn.execute(statement)]

    def load(self, rows: list[Row]) -> None:
        if not rows:
            return  # a chunk of invalid lines only; executemany of nothing is an error
        if self._direct is not None and self._spool is not None:
            try:
                self._conn.execute(insert(User), [{"username": u, "email": e} for _, u, e in rows])
            except IntegrityError:
                # A duplicate, in the file or not: diagnosed from the staging table.
                self._stage_spooled()
            else:
                self._inserted += len(rows)
                self._spool.writelines(json.dumps(row) + "\n" for row in rows)
                return
        self._stage(rows)

    def _stage(self, rows: list[Row]) -> None:
        self._conn.execute(
            staging.insert(), [{"line": n, "username": u, "email": e} for n, u, e in rows]
        )

    def _stage_spooled(self) -> None:
        direct, self._direct = self._direct, None
        if direct is not None:
            direct.rollback()
        spool, self._spool = self._spool, None
        if spool is None:
            return
        with spool:
            spool.seek(0)
            while lines := spool.readlines(1 << 20):
                self._stage([tuple(json.loads(line)) for line in lines])

    def loaded_directly(self) -> int | None:
        return self._inserted if self._direct is not None else None

    def finish(self, commit: bool) -> None:
        try:
            self._drop_scratch()
            if self._direct is not None:
                if commit:
                    self._direct.commit()
                else:
                    self._direct.rollback()
            if commit:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            if self._spool is not None:
                self._spool.close()
            self._conn.close()


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
