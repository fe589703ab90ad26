"""asyncpg on PostgreSQL, where async pays: fan-out reads, the readiness check, bulk COPY.

The main driver is psycopg (SQLAlchemy, the request session); this is the side channel.
Each app gets one pool (``init_app``), made on first use in each process, on the process's
one background loop: every request's loop reaches it through ``BackgroundLoop.run``, so
a pool is never used from two loops. It is closed when its app goes, or at exit.
"""

import asyncio
import atexit
import os
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from flask import Flask, current_app
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from app.config import Settings
from app.db import deadlines
from app.server.loops import BackgroundLoop
from app.telemetry import metrics

T = TypeVar("T")

if TYPE_CHECKING:
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

_EXTENSION = "asyncpg"  # in app.extensions
_loop = BackgroundLoop("asyncpg")
DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
pools_created = 0  # read by tests: an app's pool is made once per process


def dsn(sqlalchemy_url: str) -> str:
    """Turn the app's SQLAlchemy URL into a libpq DSN for asyncpg."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class AsyncpgPool:
    """One app's asyncpg pool; its coroutines run on the background loop (see ``run``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._lock: asyncio.Lock | None = None
        self._pid = 0

    async def pool(self) -> "asyncpg.Pool[asyncpg.Record]":
        """The pool, made on first use in this process (on the background loop)."""
        global pools_created  # noqa: PLW0603
        if self._pid != os.getpid():  # first use here, or a forked child's
            self._pool, self._lock, self._pid = None, asyncio.Lock(), os.getpid()
        assert self._lock is not None  # noqa: S101 - set just above
        async with self._lock:
            if self._pool is None:
                settings = self.settings
                # Behind PgBouncer in transaction mode, a server connection changes between
                # transactions, so no statement may be kept prepared on it (and it refuses
                # startup settings: deadlines.postgresql_startup).
                self._pool = await asyncpg.create_pool(
                    dsn(settings.database_url),
                    min_size=0,
                    # A term of the ceiling (app.config.connection_ceiling); acquire_spare
                    # takes from it, never past it.
                    max_size=settings.ASYNCPG_POOL_SIZE,
                    statement_cache_size=0 if settings.DB_PGBOUNCER else 100,
                    max_inactive_connection_lifetime=300,
                    timeout=settings.DB_CONNECT_TIMEOUT,
                    # The client-side deadline of every call: a frozen server cannot hold one.
                    command_timeout=deadlines.client_deadline(settings),
                    server_settings=deadlines.postgresql_startup(settings),
                )
                pools_created += 1
            return self._pool

    async def acquire(self) -> "Connection":
        """Take a connection from the pool; give it back with release()."""
        pool = await self.pool()
        return await pool.acquire(timeout=self.settings.DB_POOL_TIMEOUT)

    async def acquire_spare(self) -> "Connection | None":
        """Take a connection if the pool has one free now, else None; give it back with release().

        For work that only goes faster with a second connection: it never waits on the others.
        """
        pool = await self.pool()
        if pool.get_size() - pool.get_idle_size() >= pool.get_max_size():
            return None
        try:
            # Free a moment ago; a short wait covers one taken in between.
            return await pool.acquire(timeout=min(1.0, self.settings.DB_POOL_TIMEOUT))
        except TimeoutError:
            return None

    async def release(self, connection: "Connection") -> None:
        """Return a connection taken with acquire()."""
        pool = await self.pool()
        await pool.release(connection)

    def stats(self) -> tuple[int, int]:
        """Return (connections open, connections in use) of this process's pool."""
        pool = self._pool if self._pid == os.getpid() else None
        if pool is None:
            return 0, 0
        return pool.get_size(), pool.get_size() - pool.get_idle_size()

    async def close(self) -> None:
        """Close the pool (on the background loop); the next use makes a new one."""
        pool, self._pool = (self._pool if self._pid == os.getpid() else None), None
        if pool is not None:
            await pool.close()


_live: "weakref.WeakSet[AsyncpgPool]" = weakref.WeakSet()


def _close_when_unused(pool: AsyncpgPool) -> None:
    if _loop.running:
        _loop.submit(pool.close())


def init_app(app: Flask, settings: Settings) -> None:
    """Give a PostgreSQL app its asyncpg pool (made on first use, closed when the app goes)."""
    if settings.backend != "postgresql":
        return
    pool = app.extensions[_EXTENSION] = AsyncpgPool(settings)
    _live.add(pool)
    weakref.finalize(app, _close_when_unused, pool).atexit = False  # exit closes them all


def current_pool() -> AsyncpgPool:
    """Return the running app's pool (in a request or app context; PostgreSQL only)."""
    pool: AsyncpgPool = current_app.extensions[_EXTENSION]
    return pool


async def with_connection(work: "Callable[[Connection], Awaitable[T]]") -> T:
    """Run ``work`` with a connection of the app's pool, on the pool's own loop."""
    pool = current_pool()

    async def on_pool_loop() -> T:
        connection = await pool.acquire()
        metrics.asyncpg_use(*pool.stats())
        try:
            return await work(connection)
        finally:
            await pool.release(connection)
            metrics.asyncpg_use(*pool.stats())

    return await _loop.run(on_pool_loop())


def compile_query(statement: ClauseElement) -> tuple[str, list[Any]]:
    """Render a SQLAlchemy Core statement as asyncpg SQL ($1, $2, ...) and its arguments."""
    compiled = statement.compile(dialect=DIALECT)
    assert isinstance(compiled, SQLCompiler)  # noqa: S101 - Core statements compile to SQL
    params = compiled.construct_params()
    return str(compiled), [params[name] for name in compiled.positiontup or ()]


async def fetch(statement: ClauseElement) -> list[asyncpg.Record]:
    """Fetch every row of a Core statement through the app's pool."""
    sql, args = compile_query(statement)
    return await with_connection(lambda connection: connection.fetch(sql, *args))


def submit(coro: Coroutine[Any, Any, T]) -> "Future[T]":
    """Start a coroutine on the pool's loop from a plain thread; wait on the future later."""
    return _loop.submit(coro)


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the pool's loop from a plain thread (a worker, the CLI), and wait."""
    return _loop.submit(coro).result()


def row_count(status: str) -> int:
    """The row count a command's status ends in: "INSERT 0 5", "COPY 5", "SELECT 5"."""
    return int(status.rsplit(" ", 1)[-1])


async def _close_all() -> None:
    await asyncio.gather(*(pool.close() for pool in list(_live)))


def _close_at_exit() -> None:
    _loop.stop(_close_all)


atexit.register(_close_at_exit)
