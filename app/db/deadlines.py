"""Every deadline on database work, in one place: what each server and driver is told, for
request or bulk work, and the client-side deadline for servers that stop answering.

The numbers are settings (``DB_STATEMENT_TIMEOUT``, ``DB_LOCK_TIMEOUT``,
``DB_IDLE_IN_TRANSACTION_TIMEOUT``, ``DB_BULK_TIMEOUT``); this module turns them into
PostgreSQL's settings (startup options for psycopg and asyncpg, SET LOCAL for one bulk
transaction), MariaDB's session SET, PyMySQL's socket bounds and the watchdog's deadline.
Engines (``app.db.engines``) and the asyncpg pool (``app.db.asyncpg_pool``) only call it.

PostgreSQL's own timeouts (statement, lock, idle in transaction) end work the server is
doing; a server that is frozen or cut off without a reset does nothing, and the kernel
still acknowledges what it is sent, so neither those timeouts nor TCP keepalives fire:
every request on a pooled connection hung 50 s in such a test, until the server woke.
So each checked-out connection gets a deadline; past it, a watchdog thread shuts its socket
down, the blocked driver call fails at once as a lost connection (a 503), and the pool
discards the connection. psycopg has no per-call timeout of its own to do this with;
PyMySQL's read_timeout bounds each read, not the call, so it gets the same watchdog.
"""

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import closing
from itertools import count
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, event, text

from app.config import Settings

log = logging.getLogger(__name__)

# Slack on top of the statement timeout before the client gives up on the server itself.
CLIENT_DEADLINE_GRACE = 1.0


class Deadlines(NamedTuple):
    """Seconds a statement, a lock wait and an idle transaction may last."""

    statement: float
    lock: float
    idle: float


def for_work(settings: Settings, *, bulk: bool = False) -> Deadlines:
    """The deadlines of request work, or of bulk work (import, export: minutes)."""
    statement = settings.DB_BULK_TIMEOUT if bulk else settings.DB_STATEMENT_TIMEOUT
    idle = settings.DB_BULK_TIMEOUT if bulk else settings.DB_IDLE_IN_TRANSACTION_TIMEOUT
    return Deadlines(statement, settings.DB_LOCK_TIMEOUT, idle)


def client_deadline(settings: Settings) -> float:
    """Seconds a request's connection may be out of the pool before its socket is cut."""
    return settings.DB_STATEMENT_TIMEOUT + CLIENT_DEADLINE_GRACE


def postgresql_settings(settings: Settings, *, bulk: bool = False) -> dict[str, str]:
    """PostgreSQL's timeout settings (milliseconds) for request or bulk work."""
    statement, lock, idle = for_work(settings, bulk=bulk)
    return {
        "statement_timeout": str(int(statement * 1000)),
        "lock_timeout": str(int(lock * 1000)),
        "idle_in_transaction_session_timeout": str(int(idle * 1000)),
    }


def postgresql_startup(settings: Settings) -> dict[str, str]:
    """The settings every new PostgreSQL connection starts with (asyncpg's server_settings).

    None behind PgBouncer, which refuses startup options: give its database or role the
    timeouts there (ALTER ROLE ... SET statement_timeout = ...). The client deadline holds.
    """
    return {} if settings.DB_PGBOUNCER else postgresql_settings(settings)


def psycopg_connect_args(settings: Settings) -> dict[str, Any]:
    """psycopg's connect arguments for the startup settings: libpq's ``options``."""
    startup = postgresql_startup(settings)
    if not startup:
        return {}
    return {"options": " ".join(f"-c {name}={value}" for name, value in startup.items())}


def set_local(settings: Settings, *, bulk: bool) -> str:
    """The SET LOCAL statements that give a transaction request or bulk deadlines."""
    timeouts = postgresql_settings(settings, bulk=bulk)
    return "; ".join(f"SET LOCAL {name} = {value}" for name, value in timeouts.items())


def mysql_session(settings: Settings, *, bulk: bool = False) -> str:
    """MariaDB's SET for request or bulk deadlines (the server-side ones PostgreSQL gets)."""
    statement, lock, idle = for_work(settings, bulk=bulk)
    return (
        f"SET SESSION max_statement_time = {statement:g},"
        # Row locks, and table (metadata) locks, as PostgreSQL's lock_timeout bounds both:
        # whole seconds only, rounded up (0 would mean no wait at all).
        f" innodb_lock_wait_timeout = {math.ceil(lock)},"
        f" lock_wait_timeout = {math.ceil(lock)},"
        f" idle_transaction_timeout = {math.ceil(idle)},"
        # Not a deadline: the one SET every MariaDB connection starts with carries it too.
        " time_zone = '+00:00'"
    )


def mysql_socket_bound(settings: Settings) -> float:
    """Seconds PyMySQL may wait on one read or write of request work."""
    # PyMySQL's connect_timeout covers the TCP connect only: a server that accepts and never
    # answers held a connect 8 s, until it hung up. So every read and write has a bound, a
    # grace past the watchdog's (which ends a checked-out connection's calls first).
    return client_deadline(settings) + CLIENT_DEADLINE_GRACE


def pymysql_connect_args(settings: Settings) -> dict[str, Any]:
    """PyMySQL's connect arguments for request deadlines: socket bounds and the session SET."""
    return {
        "read_timeout": mysql_socket_bound(settings),
        "write_timeout": mysql_socket_bound(settings),
        "init_command": mysql_session(settings),
    }


_BULK = "bulk_deadlines"  # in a pooled MariaDB connection's info while it has them


def bulk_deadlines(connection: Connection, settings: Settings) -> None:
    """Give a checked-out connection bulk deadlines (import, export) instead of a request's.

    PostgreSQL's last until the transaction ends (SET LOCAL); MariaDB's are the session's,
    so the pool puts the request ones back when the connection returns (_request_deadlines).
    """
    if settings.backend == "sqlite":
        return
    extend(connection, settings.DB_BULK_TIMEOUT)
    if settings.backend == "postgresql":
        connection.execute(text(set_local(settings, bulk=True)))
        return
    connection.exec_driver_sql(mysql_session(settings, bulk=True))
    connection.connection.info[_BULK] = True
    # PyMySQL bounds each read by read_timeout and offers no setter; its reads take this.
    connection.connection.dbapi_connection._read_timeout = settings.DB_BULK_TIMEOUT  # type: ignore[union-attr]


def _request_deadlines(settings: Settings) -> Callable[[Any, Any, Any], None]:
    statement = mysql_session(settings)

    def reset(dbapi_connection: Any, record: Any, _state: Any) -> None:
        if record.info.pop(_BULK, False):
            dbapi_connection._read_timeout = mysql_socket_bound(settings)
            with closing(dbapi_connection.cursor()) as cursor:
                cursor.execute(statement)

    return reset


def install(engine: Engine, settings: Settings) -> None:
    """Give a PostgreSQL or MariaDB engine's connections their client deadline, and MariaDB's
    request deadlines back when a connection that had bulk ones returns to the pool."""
    watch(engine, client_deadline(settings))
    if settings.backend == "mysql":
        event.listen(engine, "reset", _request_deadlines(settings))


# A watchdog that ticks this often ends a call at most this late.
_TICK = 0.2
_INFO_KEY = "deadline_token"


class Watchdog:
    """One daemon thread per process that shuts down sockets whose deadline passed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, int]] = {}  # token: (deadline, socket fd)
        self._tokens = count(1)
        self._pid = 0
        self.fired = 0  # read by tests

    def arm(self, fd: int, seconds: float) -> int:
        """Watch the socket for this long; return the token that disarms it."""
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (after a fork)
                self._pid = os.getpid()
                self._armed.clear()
                threading.Thread(target=self._run, name="db-deadline", daemon=True).start()
            token = next(self._tokens)
            self._armed[token] = (time.monotonic() + seconds, fd)
            return token

    def rearm(self, token: int, seconds: float) -> None:
        """Move a watched socket's deadline to this many seconds from now."""
        with self._lock:
            if token in self._armed:
                self._armed[token] = (time.monotonic() + seconds, self._armed[token][1])

    def disarm(self, token: int) -> None:
        """Stop watching; after this returns the watchdog never touches that socket."""
        with self._lock:
            self._armed.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(_TICK)
            now = time.monotonic()
            # Under the lock: a socket is shut down only while its connection is still
            # checked out, so its descriptor cannot have been reused meanwhile.
            with self._lock:
                expired = [t for t, (deadline, _) in self._armed.items() if deadline <= now]
                for token in expired:
                    _, fd = self._armed.pop(token)
                    _shut_down(fd)
                    self.fired += 1


def _shut_down(fd: int) -> None:
    # shutdown() acts on the socket, not the descriptor: the driver's blocked wait returns
    # and its next read sees the end; the duplicate is closed, the driver's own fd is not.
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return
    log.error("a database call passed its deadline; its connection was cut")


watchdog = Watchdog()


def extend(connection: Connection, seconds: float) -> None:
    """Give a checked-out connection a new deadline from now (bulk work: an export)."""
    token = connection.connection.info.get(_INFO_KEY)
    if token is not None:
        watchdog.rearm(token, seconds)


def _fileno(dbapi_connection: Any) -> int:
    # psycopg's connection says its socket; PyMySQL's keeps it, with no accessor of its own.
    if hasattr(dbapi_connection, "fileno"):
        return int(dbapi_connection.fileno())
    return int(dbapi_connection._sock.fileno())


def watch(engine: Engine, seconds: float) -> None:
    """Give every connection the engine hands out a deadline of this many seconds."""

    @event.listens_for(engine, "checkout")
    def _arm(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        record.info[_INFO_KEY] = watchdog.arm(_fileno(dbapi_connection), seconds)

    def _disarm(record: Any) -> None:
        token = record.info.pop(_INFO_KEY, None)
        if token is not None:
            watchdog.disarm(token)

    # Invalidation closes the connection (and may clear its info) before any checkin.
    event.listen(engine, "invalidate", lambda _c, record, _e: _disarm(record))
    event.listen(engine, "soft_invalidate", lambda _c, record, _e: _disarm(record))
    event.listen(engine, "checkin", lambda _c, record: _disarm(record))
