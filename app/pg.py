"""asyncpg on PostgreSQL, where async pays: fan-out reads, the readiness check, bulk COPY.

One pool per process, on the process's background loop: every request's loop reaches it
through ``BackgroundLoop.run``, so the pool is made once and never crosses loops.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from flask import current_app
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from app.aio import BackgroundLoop
from app.config import Settings
from app.errors import DATABASE_ERRORS
from app.extensions import current_settings

T = TypeVar("T")

_loop = BackgroundLoop("asyncpg")
DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
# One pool per database URL (an app has one; a test run may make several apps).
_pools: "dict[str, asyncpg.Pool[asyncpg.Record]]" = {}
_pools_lock: asyncio.Lock | None = None
pools_created = 0  # read by tests: a pool must be made once per process


def dsn(sqlalchemy_url: str) -> str:
    """Turn the app's SQLAlchemy URL into a libpq DSN for asyncpg."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Target:
    """The database an app's asyncpg work goes to, and the settings its pool is made with."""

    url: str
    settings: Settings


def current_target() -> Target:
    """Return the running app's target (read in a request or app context)."""
    return Target(current_app.config["SQLALCHEMY_DATABASE_URI"], current_settings())


async def _get_pool(target: Target) -> "asyncpg.Pool[asyncpg.Record]":
    global _pools_lock, pools_created  # noqa: PLW0603
    if _pools_lock is None:
        _pools_lock = asyncio.Lock()
    settings = target.settings
    async with _pools_lock:
        pool = _pools.get(target.url)
        if pool is None:
            # Behind PgBouncer in transaction mode, a server connection changes between
            # transactions, so no statement may be kept prepared on it, and PgBouncer
            # refuses startup settings: the timeouts are then its database's or role's.
            cache = 0 if settings.DB_PGBOUNCER else 100
            pool = _pools[target.url] = await asyncpg.create_pool(
                dsn(target.url),
                min_size=0,
                max_size=settings.ASYNCPG_POOL_SIZE,
                statement_cache_size=cache,
                max_inactive_connection_lifetime=300,
                timeout=settings.DB_CONNECT_TIMEOUT,
                # The client-side deadline of every call: a frozen server cannot hold one.
                command_timeout=settings.client_deadline,
                server_settings={} if settings.DB_PGBOUNCER else settings.server_timeouts(),
            )
            pools_created += 1
        return pool


if TYPE_CHECKING:
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]


async def with_connection(work: "Callable[[Connection], Awaitable[T]]") -> T:
    """Run ``work`` with a pooled asyncpg connection, on the pool's own loop."""
    target = current_target()

    async def on_pool_loop() -> T:
        pool = await _get_pool(target)
        async with pool.acquire(timeout=target.settings.DB_POOL_TIMEOUT) as connection:
            return await work(connection)

    return await _loop.run(on_pool_loop())


def compile_query(statement: ClauseElement) -> tuple[str, list[Any]]:
    """Render a SQLAlchemy Core statement as asyncpg SQL ($1, $2, ...) and its arguments."""
    compiled = statement.compile(dialect=DIALECT)
    assert isinstance(compiled, SQLCompiler)  # noqa: S101 - Core statements compile to SQL
    params = compiled.construct_params()
    return str(compiled), [params[name] for name in compiled.positiontup or ()]


async def fetch(statement: ClauseElement) -> list[asyncpg.Record]:
    """Fetch every row of a Core statement through the asyncpg pool."""
    sql, args = compile_query(statement)
    return await with_connection(lambda connection: connection.fetch(sql, *args))


def submit(coro: Coroutine[Any, Any, T]) -> "Future[T]":
    """Start a coroutine on the pool's loop from a plain thread; wait on the future later."""
    return _loop.submit(coro)


def set_local(settings: Settings, *, bulk: bool) -> str:
    """The SET LOCAL statements that give a transaction request or bulk deadlines."""
    return "; ".join(f"SET LOCAL {k} = {v}" for k, v in settings.server_timeouts(bulk=bulk).items())


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the pool's loop from a plain thread (a worker, the CLI), and wait."""
    return _loop.submit(coro).result()


async def acquire(target: Target) -> "Connection":
    """Take a connection from the pool (on the pool's loop); give it back with release()."""
    pool = await _get_pool(target)
    return await pool.acquire(timeout=target.settings.DB_POOL_TIMEOUT)


async def acquire_spare(target: Target) -> "Connection | None":
    """Take a connection if the pool has one free now, else None; give it back with release().

    For work that only goes faster with a second connection: it never waits on the others.
    """
    pool = await _get_pool(target)
    if pool.get_size() - pool.get_idle_size() >= pool.get_max_size():
        return None
    try:
        # Free a moment ago; a short wait covers one taken in between.
        return await pool.acquire(timeout=min(1.0, target.settings.DB_POOL_TIMEOUT))
    except TimeoutError:
        return None


async def release(target: Target, connection: "Connection") -> None:
    """Return a connection taken with acquire()."""
    pool = await _get_pool(target)
    await pool.release(connection)


class CopyAbortedError(Exception):
    """Raised in a COPY's source to stop it."""


def row_count(status: str) -> int:
    """The row count a command's status ends in: "INSERT 0 5", "COPY 5", "SELECT 5"."""
    return int(status.rsplit(" ", 1)[-1])


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


def pool_stats(sqlalchemy_url: str) -> tuple[int, int]:
    """Return (connections open, connections in use) of this process's pool for the URL."""
    pool = _pools.get(sqlalchemy_url)
    if pool is None:
        return 0, 0
    return pool.get_size(), pool.get_size() - pool.get_idle_size()


async def _close_pools() -> None:
    pools = list(_pools.values())
    _pools.clear()
    await asyncio.gather(*(pool.close() for pool in pools))


def close() -> None:
    """Close the pools and stop their loop (at exit)."""
    _loop.stop(_close_pools)
