"""Loading on PostgreSQL: rows streamed by COPY through asyncpg (see loading.Target)."""

import json
import tempfile
from collections.abc import Mapping
from typing import IO, Any

import asyncpg
from asyncpg.transaction import Transaction
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql import Executable

from app.db import asyncpg_pool as pg
from app.db import deadlines
from app.db.copy_in import CopyIn
from app.models import User
from app.services import events
from app.services.bulk import loading
from app.services.bulk.judging import FIELDS, Row, staging

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


class PostgresTarget(loading.Target):
    """Pooled asyncpg connections, each in one transaction; rows arrive by streamed COPY.

    Rows are copied into the staging table. With ``direct`` (error mode) and a second
    connection free, they are instead copied straight into user_account on that one and
    spooled aside: its unique indexes catch every duplicate, so a clean file needs no
    further statement and PostgreSQL does one COPY's work, as a bare COPY would, while
    this thread parses the next rows. After a violation that transaction is rolled back,
    the spooled rows are staged, and the staging table tells which lines were at fault.
    The connections are taken on entering the ``with`` block and given back on leaving it.
    """

    def __init__(self, direct: bool) -> None:
        super().__init__(direct)
        self._pool = pg.current_pool()
        settings = self._pool.settings
        # Every call of the import may take as long as the bulk deadline, not a request's.
        self._timeout = settings.DB_BULK_TIMEOUT
        self._bulk = deadlines.set_local(settings, bulk=True)
        self._conn: pg.Connection | None = None
        self._tx: Transaction | None = None
        self._direct_conn: pg.Connection | None = None
        self._direct_tx: Transaction | None = None
        self._staged: CopyIn | None = None
        self._direct: CopyIn | None = None
        self._spool: IO[bytes] | None = None
        self._copied = 0

    def _open(self) -> None:
        self._conn = pg.run_blocking(self._pool.acquire())
        self._tx = self._begin(self._conn)
        pg.run_blocking(self._conn.execute(str(CreateTable(staging).compile(dialect=pg.DIALECT))))
        if self._want_direct:
            self._direct_conn = pg.run_blocking(self._pool.acquire_spare())
        if self._direct_conn is None:
            self._staged = self._staging_copy(self._conn)
        else:
            self._direct_tx = self._begin(self._direct_conn)
            # Open until _release, which leaving the block or a failed _open calls.
            self._spool = tempfile.SpooledTemporaryFile(max_size=loading.SPOOL_MEMORY)  # noqa: SIM115
            self._direct = CopyIn(
                self._direct_conn, User.__tablename__, list(FIELDS), self._timeout
            )

    def _roll_back(self) -> None:
        try:
            self._end_copies(abort=True)
        finally:
            self._end_direct(commit=False)
            tx, self._tx = self._tx, None
            if tx is not None:
                pg.run_blocking(tx.rollback())

    def _begin(self, conn: "pg.Connection") -> Transaction:
        tx = conn.transaction()
        pg.run_blocking(tx.start())
        pg.run_blocking(conn.execute(self._bulk))
        return tx

    def _staging_copy(self, conn: "pg.Connection") -> CopyIn:
        columns = [c.name for c in staging.columns]
        return CopyIn(conn, staging.name, columns, self._timeout)

    def load(self, rows: list[Row]) -> None:
        if self._conn is None:
            raise RuntimeError(loading.OUTSIDE_BLOCK)
        loading.check_loading(self._loading, expected=True)
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

    def end_load(self) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError(loading.OUTSIDE_BLOCK)
        if not self._loading:
            return
        self._end_copies()
        if self._spool is not None and self._direct_conn is None:
            spool, self._spool = self._spool, None
            self._stage_spooled(conn, spool)
        self._created_directly = self._copied if self._direct_conn is not None else None

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

    def _stage_spooled(self, conn: "pg.Connection", spool: IO[bytes]) -> None:
        with spool:
            spool.seek(0)
            copy = self._staging_copy(conn)
            try:
                while lines := spool.readlines(1 << 20):
                    copy.send(b"".join(lines))
            except BaseException:
                copy.abort()
                raise
            copy.close()

    def _end_direct(self, commit: bool) -> None:
        conn, tx = self._direct_conn, self._direct_tx
        self._direct_conn, self._direct_tx = None, None
        if conn is not None:
            try:
                if tx is not None:
                    pg.run_blocking(tx.commit() if commit else tx.rollback())
            finally:
                pg.run_blocking(self._pool.release(conn))

    def _statements(self) -> "pg.Connection":
        if self._conn is None or self._tx is None:
            raise RuntimeError(loading.OUTSIDE_BLOCK)
        loading.check_loading(self._loading, expected=False)
        return self._conn

    def execute(self, statement: Executable) -> int:
        conn = self._statements()
        sql, args = pg.compile_query(statement)  # type: ignore[arg-type]
        status = pg.run_blocking(conn.execute(sql, *args, timeout=self._timeout))
        return pg.row_count(status)

    def execute_unless_taken(self, statement: Executable) -> int | None:
        """Execute in a savepoint; None, with nothing done, if a unique index refused a row."""
        conn = self._statements()
        sql, args = pg.compile_query(statement)  # type: ignore[arg-type]

        async def attempt() -> str | None:
            try:
                async with conn.transaction():  # nested: a savepoint
                    return await conn.execute(sql, *args, timeout=self._timeout)
            except asyncpg.UniqueViolationError:
                return None

        status = pg.run_blocking(attempt())
        return None if status is None else pg.row_count(status)

    def fetch(self, statement: Executable) -> list[tuple[Any, ...]]:
        conn = self._statements()
        sql, args = pg.compile_query(statement)  # type: ignore[arg-type]
        rows = pg.run_blocking(conn.fetch(sql, *args, timeout=self._timeout))
        return [tuple(r) for r in rows]

    def commit(self, event: Mapping[str, Any] | None = None) -> None:
        tx = self._tx
        if tx is None:
            raise RuntimeError(loading.OUTSIDE_BLOCK)
        loading.check_loading(self._loading, expected=False)
        # Forgotten first: a failed commit is not rolled back on leaving the block.
        self._tx = None
        holder = self._direct_conn if self._direct_conn is not None else self._conn
        if event is not None and holder is not None:
            # asyncpg takes JSON as its text: SQLAlchemy's JSON type does not bind here.
            row = {**event, "changes": json.dumps(event["changes"])}
            sql, args = pg.compile_query(events.INSERT_EVENT.values(row))
            pg.run_blocking(holder.execute(sql, *args, timeout=self._timeout))
        if self._direct_conn is not None:
            # The direct copy holds the import; the staging connection's work is scratch.
            self._end_direct(commit=True)
            pg.run_blocking(tx.rollback())
        else:
            pg.run_blocking(tx.commit())

    def _release(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        direct_conn, conn = self._direct_conn, self._conn
        self._direct_conn, self._direct_tx, self._conn, self._tx = None, None, None, None
        try:
            if direct_conn is not None:
                pg.run_blocking(self._pool.release(direct_conn))
        finally:
            if conn is not None:
                pg.run_blocking(self._pool.release(conn))
