"""``COPY ... FROM STDIN`` through asyncpg, fed batch by batch from a plain thread."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

import asyncpg

from app.db.asyncpg_pool import row_count, submit
from app.db.failures import DATABASE_ERRORS

if TYPE_CHECKING:
    from app.db.asyncpg_pool import Connection


class CopyAbortedError(Exception):
    """Raised in a COPY's source to stop it."""


def _lost(connection: "Connection") -> bool:
    try:
        return connection.is_closed()
    except asyncpg.InterfaceError:
        return True  # the pool detached the proxy: its connection is gone


class CopyIn:
    """A ``COPY table FROM STDIN`` in text format, fed batch by batch from a plain thread.

    The COPY runs on the pool's loop for as long as batches come, so PostgreSQL parses and
    stores rows on its own core while the thread prepares the next batch; at most two
    batches wait in between. Text format leaves the row encoding to the thread that
    formats the batch and the parsing to the server.
    """

    QUEUED = 2

    def __init__(
        self, connection: "Connection", table: str, columns: Sequence[str], timeout: float
    ) -> None:
        self._timeout = timeout
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=self.QUEUED)
        self._stopped = False
        self._aborted = False
        self._offered: Future[None] | None = None
        self._copied = submit(self._copy(connection, table, list(columns)))
        self._result: int | None = None

    async def _batches(self, connection: "Connection") -> AsyncIterator[bytes]:
        # asyncpg drains the source before it reports a lost connection: stop early, so
        # the next send() raises instead of the whole file being read in vain.
        while (batch := await self._queue.get()) is not None and not _lost(connection):
            if self._aborted:
                raise CopyAbortedError
            yield batch
        if self._aborted:
            raise CopyAbortedError

    async def _copy(self, connection: "Connection", table: str, columns: list[str]) -> int:
        try:
            status = await connection.copy_to_table(
                table,
                source=self._batches(connection),
                columns=columns,
                format="text",
                timeout=self._timeout,
            )
        finally:
            # Nothing reads the queue any more: unblock a waiting send and refuse the rest.
            self._stopped = True
            while not self._queue.empty():
                self._queue.get_nowait()
        return row_count(status)

    async def _offer(self, batch: bytes | None) -> None:
        if not self._stopped:
            await self._queue.put(batch)

    def _wait_offered(self) -> None:
        if self._offered is not None:
            offered, self._offered = self._offered, None
            offered.result()

    def send(self, batch: bytes) -> None:
        """Queue rows in COPY text format, each ending in a newline; wait while two wait.

        Raise the COPY's error if it has already failed.
        """
        self._wait_offered()
        if self._copied.done():
            self._copied.result()
            msg = "the COPY ended before its last batch"
            raise RuntimeError(msg)
        self._offered = submit(self._offer(batch))

    async def _abort(self) -> None:
        self._aborted = True
        if self._queue.empty():
            self._queue.put_nowait(None)  # wake the source if it waits

    def abort(self) -> None:
        """Stop the COPY without waiting for the rows sent to be stored; raise nothing.

        asyncpg answers an error in the source with CopyFail and a cancel request, so the
        server drops what it has not stored yet instead of storing it to roll it back.
        """
        if self._result is None:
            submit(self._abort()).result()
            self._result = 0
            # Whatever ended it (our abort, a lost server), its rows are being discarded.
            with contextlib.suppress(CopyAbortedError, *DATABASE_ERRORS):
                self._copied.result()

    def close(self) -> int:
        """End the COPY, wait for it and return the number of rows copied (or raise its error)."""
        if self._result is None:
            self._wait_offered()
            submit(self._offer(None)).result()
            self._result = self._copied.result()
        return self._result
