"""The app's SQLAlchemy engines: options, SQLite pragmas, deadlines and the loop guard."""

from collections.abc import Callable
from typing import Any

from flask import Flask, Response
from sqlalchemy import event
from sqlalchemy.pool import PoolResetState

from app.config import Settings
from app.db import deadlines
from app.db.replicas import REPLICA, token_after_writes
from app.db.session import AUTOCOMMIT, COMMITTED, db, sql_may_block_here
from app.db.types import sessions_in_utc
from app.telemetry import metrics


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside a writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _pool_options(settings: Settings) -> dict[str, Any]:
    # Every engine's pool holds at most pool_size + max_overflow: a term of the server's
    # ceiling (app.config.connection_ceiling), which the settings sized to DB_MAX_CONNECTIONS.
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
            # Its reset on return is _roll_back_unless_committed (installed in init_app).
            "pool_reset_on_return": None,
            # PostgreSQL's default, which every read and conditional write here assumes:
            # InnoDB's REPEATABLE READ would keep a pooled transaction's older snapshot.
            "isolation_level": "READ COMMITTED",
            "connect_args": {
                "connect_timeout": settings.DB_CONNECT_TIMEOUT,
                **deadlines.pymysql_connect_args(settings),
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
        **deadlines.psycopg_connect_args(settings),
    }
    if settings.DB_PGBOUNCER:
        # In transaction mode the next transaction may be on another server connection,
        # which never saw the statement prepared on this one.
        connect_args["prepare_threshold"] = None
    else:
        # Sessions in UTC by name: psycopg then returns datetimes in datetime.UTC itself,
        # which UTCDateTime passes through as they are (Etc/UTC, a server's usual default,
        # came back as a ZoneInfo that each value was converted from).
        options = connect_args.get("options", "")
        connect_args["options"] = f"{options} -c TimeZone=UTC".strip()
    return {**_pool_options(settings), "connect_args": connect_args}


# The pool's ROLLBACK on return is a round trip for nothing after the ORM's COMMIT, which
# then closes the connection: the pool cannot tell it from a connection that SQL past
# SQLAlchemy left in a transaction (MariaDB's status flags do not say: an implicit
# transaction does not set SERVER_STATUS_IN_TRANS), so app.db.session says (COMMITTED).
def _roll_back_unless_committed(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
    if state.transaction_was_reset or record.info.pop(COMMITTED, False):
        return
    dbapi_connection.rollback()


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
    if settings.backend == "mysql":
        # PyMySQL sends the ROLLBACK that ends a unit here (Session.close), a round trip of
        # nothing in autocommit, which psycopg's rollback of an idle connection does not
        # send: a GET was 2 round trips (tests/db/test_mariadb_round_trips.py). SQLAlchemy
        # skips it where PyMySQL's last status says autocommit, which a transaction opened
        # by SQL does not change: transaction(begin=...) refuses to open one here.
        binds[AUTOCOMMIT]["skip_autocommit_rollback"] = True
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
                deadlines.install(engine, settings)
            if settings.backend == "mysql" and bind is None:
                event.listen(engine, "reset", _roll_back_unless_committed)
            if "TimeZone=UTC" in options["connect_args"].get("options", ""):
                sessions_in_utc(engine.dialect)  # before its first statement: see types.py
            if settings.ASYNC_DEBUG:
                event.listen(engine, "before_cursor_execute", _refuse_sql_on_event_loop)


def consistency_token_hook(app: Flask) -> Callable[[Response], Response] | None:
    """The after_request hook that gives a write's response its Consistency-Token, where a
    replica is configured (app.web.pipeline places it); None without one."""
    with app.app_context():
        if REPLICA not in db.engines:
            return None
        return token_after_writes(db.engines[AUTOCOMMIT])
