"""Loading on SQLite and MariaDB: rows by executemany on the app's engine (see loading.Target)."""

import json
import tempfile
from collections.abc import Mapping
from typing import IO, Any

from sqlalchemy import Connection, NestedTransaction, RootTransaction, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql import Executable

from app.config import current_settings
from app.db.deadlines import bulk_deadlines
from app.db.session import db
from app.models import User
from app.services import events
from app.services.bulk import loading
from app.services.bulk.judging import Row, staging, verdict


class SqlAlchemyTarget(loading.Target):
    """A connection of the app's engine in one transaction; rows arrive by executemany.

    With ``direct`` (error mode) rows go straight into user_account, in a savepoint, and are
    spooled aside: its unique indexes catch every duplicate, so a clean file needs no
    further statement (MariaDB, bench/import_mariadb.py: 39,000 rows/s over HTTP against
    23,000 staging, classifying and moving; bare multi-row INSERTs 54,000). After a violation
    the savepoint is rolled back, the spooled rows are staged, and the staging table tells
    which lines were at fault. The connection is taken on entering the ``with`` block and
    closed on leaving it.
    """

    def __init__(self, direct: bool = False) -> None:
        super().__init__(direct)
        self._inserted = 0
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._direct: NestedTransaction | None = None
        self._spool: IO[str] | None = None

    def _open(self) -> None:
        conn = self._conn = db.engine.connect()
        self._tx = conn.begin()
        bulk_deadlines(conn, current_settings())
        self._drop_scratch(conn)
        conn.execute(CreateTable(staging))
        if self._want_direct:
            self._direct = conn.begin_nested()
            # Open until _release, which leaving the block or a failed _open calls.
            self._spool = tempfile.SpooledTemporaryFile(max_size=loading.SPOOL_MEMORY, mode="w+")  # noqa: SIM115

    def _roll_back(self) -> None:
        conn, tx, direct = self._conn, self._tx, self._direct
        self._tx, self._direct = None, None
        if conn is not None and tx is not None:
            self._drop_scratch(conn)
            if direct is not None:
                direct.rollback()
            tx.rollback()

    def _release(self) -> None:
        conn, self._conn, self._tx, self._direct = self._conn, None, None, None
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if conn is not None:
            conn.close()

    def _drop_scratch(self, conn: Connection) -> None:
        # SQLite's temporary tables live as long as the connection, which the pool keeps.
        for table in (verdict, staging):
            conn.execute(DropTable(table, if_exists=True))

    def _statements(self) -> Connection:
        if self._conn is None or self._tx is None:
            raise RuntimeError(loading.OUTSIDE_BLOCK)
        loading.check_loading(self._loading, expected=False)
        return self._conn

    def execute(self, statement: Executable) -> int:
        return int(self._statements().execute(statement).rowcount)

    def execute_unless_taken(self, statement: Executable) -> int | None:
        """Execute in a savepoint; None, with nothing done, if a unique index refused a row."""
        conn = self._statements()
        try:
            with conn.begin_nested():
                return int(conn.execute(statement).rowcount)
        except IntegrityError:
            return None

    def fetch(self, statement: Executable) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._statements().execute(statement)]

    def load(self, rows: list[Row]) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError(loading.OUTSIDE_BLOCK)
        loading.check_loading(self._loading, expected=True)
        if not rows:
            return  # a chunk of invalid lines only; executemany of nothing is an error
        if self._direct is not None and self._spool is not None:
            try:
                conn.execute(insert(User), [{"username": u, "email": e} for _, u, e in rows])
            except IntegrityError:
                # A duplicate, in the file or not: diagnosed from the staging table.
                self._stage_spooled(conn)
            else:
                self._inserted += len(rows)
                self._spool.writelines(json.dumps(row) + "\n" for row in rows)
                return
        self._stage(conn, rows)

    def _stage(self, conn: Connection, rows: list[Row]) -> None:
        conn.execute(staging.insert(), [{"line": n, "username": u, "email": e} for n, u, e in rows])

    def _stage_spooled(self, conn: Connection) -> None:
        direct, self._direct = self._direct, None
        if direct is not None:
            direct.rollback()
        spool, self._spool = self._spool, None
        if spool is None:
            return
        with spool:
            spool.seek(0)
            while lines := spool.readlines(1 << 20):
                self._stage(conn, [tuple(json.loads(line)) for line in lines])

    def end_load(self) -> None:
        if self._conn is None:
            raise RuntimeError(loading.OUTSIDE_BLOCK)
        if self._loading:
            self._loading = False
            self._created_directly = self._inserted if self._direct is not None else None

    def commit(self, event: Mapping[str, Any] | None = None) -> None:
        conn, tx, direct = self._conn, self._tx, self._direct
        if conn is None or tx is None:
            raise RuntimeError(loading.OUTSIDE_BLOCK)
        loading.check_loading(self._loading, expected=False)
        # Forgotten first: a failed commit is not rolled back on leaving the block.
        self._tx, self._direct = None, None
        self._drop_scratch(conn)
        if direct is not None:
            direct.commit()
        if event is not None:
            conn.execute(events.INSERT_EVENT, dict(event))
        tx.commit()
