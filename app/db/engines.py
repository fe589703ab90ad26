"""The app's SQLAlchemy engines: options, SQLite pragmas, deadlines and the loop guard."""

import math
from collections.abc import Callable
from contextlib import closing
from typing import Any

from flask import Flask
from sqlalchemy import Connection, event, text

from app import metrics
from app.config import CLIENT_DEADLINE_GRACE, Settings
from app.db import deadlines
from app.db.asyncpg_pool import set_local
from app.db.replicas import REPLICA, token_after_writes
from app.db.session import AUTOCOMMIT, db, sql_may_block_here


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside a writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def mysql_session(settings: Settings, *, bulk: bool = False) -> str:
    """MariaDB's SET for request or bulk deadlines (the server-side ones PostgreSQL gets)."""
    statement, lock, idle = settings.deadlines(bulk=bulk)
    return (
        f"SET SESSION max_statement_time = {statement:g},"
        # Row locks, and table (metadata) locks, as PostgreSQL's lock_timeout bounds both:
        # whole seconds only, rounded up (0 would mean no wait at all).
        f" innodb_lock_wait_timeout = {math.ceil(lock)},"
        f" lock_wait_timeout = {math.ceil(lock)},"
        f" idle_transaction_timeout = {math.ceil(idle)},"
        " time_zone = '+00:00'"
    )


_BULK = "bulk_deadlines"  # in a pooled MariaDB connection's info while it has them


def bulk_deadlines(connection: Connection, settings: Settings) -> None:
    """Give a checked-out connection bulk deadlines (import, export) instead of a request's.

    PostgreSQL's last until the transaction ends (SET LOCAL); MariaDB's are the session's,
    so the pool puts the request ones back when the connection returns (_request_deadlines).
    """
    if settings.backend == "sqlite":
        return
    deadlines.extend(connection, settings.DB_BULK_TIMEOUT)
    if settings.backend == "postgresql":
        connection.execute(text(set_local(settings, bulk=True)))
        return
    connection.exec_driver_sql(mysql_session(settings, bulk=True))
    connection.connection.info[_BULK] = True
    # PyMySQL bounds each read by read_timeout and offers no setter; its reads take this.
    connection.connection.dbapi_connection._read_timeout = settings.DB_BULK_TIMEOUT  # type: ignore[union-attr]


def _mysql_socket_bound(settings: Settings) -> float:
    # PyMySQL's connect_timeout covers the TCP connect only: a server that accepts and never
    # answers held a connect 8 s, until it hung up. So every read and write has a bound, a
    # grace past the watchdog's (which ends a checked-out connection's calls first).
    return settings.client_deadline + CLIENT_DEADLINE_GRACE


def _request_deadlines(settings: Settings) -> Callable[[Any, Any, Any], None]:
    statement = mysql_session(settings)

    def reset(dbapi_connection: Any, record: Any, _state: Any) -> None:
        if record.info.pop(_BULK, False):
            dbapi_connection._read_timeout = _mysql_socket_bound(settings)
            with closing(dbapi_connection.cursor()) as cursor:
                cursor.execute(statement)

    return reset


def _pool_options(settings: Settings) -> dict[str, Any]:
    return {
        "pool_size": settings.DB_POOL_SIZE,
        "max_overflow": settings.DB_MAX_OVERFLOW,
        "pool_timeout": settings.DB_POOL_TIMEOUT,
        "pool_recycle": 1800,
    }


def engine_options(settings: Settings) -> dict[str, Any]:
    """The create_engine options of both engines, for this backend."""
    if settings.backend == "sqlite":
        return {"connect_args": {"timeout": 5}}
    if settings.backend == "mysql":
        return {
            **_pool_options(settings),
            # PostgreSQL's default, which every read and conditional write here assumes:
            # InnoDB's REPEATABLE READ would keep a pooled transaction's older snapshot.
            "isolation_level": "READ COMMITTED",
            "connect_args": {
                "connect_timeout": settings.DB_CONNECT_TIMEOUT,
                "read_timeout": _mysql_socket_bound(settings),
                "write_timeout": _mysql_socket_bound(settings),
                "init_command": mysql_session(settings),
            },
        }
    connect_args: dict[str, Any] = {
        "connect_timeout": settings.DB_CONNECT_TIMEOUT,
        # A peer that vanished (a failover, a cut cable) is noticed on an idle pooled
        # connection within about a minute, and unacknowledged data fails in 10 s.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }
    if settings.DB_PGBOUNCER:
        # PgBouncer refuses startup options: set the timeouts on its database or role
        # (ALTER ROLE ... SET statement_timeout = ...). The client deadline still holds.
        connect_args["prepare_threshold"] = None
    else:
        connect_args["options"] = " ".join(
            f"-c {name}={value}" for name, value in settings.server_timeouts().items()
        )
    return {**_pool_options(settings), "connect_args": connect_args}


def _refuse_sql_on_event_loop(*_: Any) -> None:
    if not sql_may_block_here():
        msg = "SQL ran on an event loop thread and blocked it: wrap the call in run_db()"
        raise RuntimeError(msg)


def init_app(app: Flask, settings: Settings) -> None:
    """Give the app its two engines on the settings' database and the request session."""
    url = settings.database_url
    options = engine_options(settings)
    binds: dict[str, dict[str, Any]] = {
        AUTOCOMMIT: {
            "url": url,
            **options,
            "isolation_level": "AUTOCOMMIT",
            "pool_reset_on_return": None,
        }
    }
    if settings.replica_url is not None:
        # Reads only, each statement on its own: the autocommit engine's options.
        binds[REPLICA] = {**binds[AUTOCOMMIT], "url": settings.replica_url}
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=options,
        # Its connections never hold a transaction, so there is nothing to reset on return.
        SQLALCHEMY_BINDS=binds,
        SQLALCHEMY_ECHO=settings.SQL_ECHO,
    )
    db.init_app(app)
    with app.app_context():
        for bind, engine in db.engines.items():
            metrics.watch_pool(engine, bind or "default")
            if settings.backend == "sqlite":
                event.listen(engine, "connect", _sqlite_on_connect)
            else:
                deadlines.watch(engine, settings.client_deadline)
            if settings.backend == "mysql":
                event.listen(engine, "reset", _request_deadlines(settings))
            if settings.ASYNC_DEBUG:
                event.listen(engine, "before_cursor_execute", _refuse_sql_on_event_loop)
        if REPLICA in db.engines:
            app.after_request(token_after_writes(db.engines[AUTOCOMMIT]))
