"""The app's SQLAlchemy engines: options, SQLite pragmas, deadlines and the loop guard."""

from typing import Any

from flask import Flask
from sqlalchemy import event

from app import metrics
from app.config import Settings
from app.db import deadlines
from app.db.session import AUTOCOMMIT, db, sql_may_block_here


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside a writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def engine_options(settings: Settings) -> dict[str, Any]:
    """The create_engine options of both engines, for this backend."""
    if settings.backend == "sqlite":
        return {"connect_args": {"timeout": 5}}
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
    return {
        "pool_size": settings.DB_POOL_SIZE,
        "max_overflow": settings.DB_MAX_OVERFLOW,
        "pool_timeout": settings.DB_POOL_TIMEOUT,
        "pool_recycle": 1800,
        "connect_args": connect_args,
    }


def _refuse_sql_on_event_loop(*_: Any) -> None:
    if not sql_may_block_here():
        msg = "SQL ran on an event loop thread and blocked it: wrap the call in run_db()"
        raise RuntimeError(msg)


def init_app(app: Flask, settings: Settings) -> None:
    """Give the app its two engines on the settings' database and the request session."""
    url = settings.database_url
    options = engine_options(settings)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=options,
        # Its connections never hold a transaction, so there is nothing to reset on return.
        SQLALCHEMY_BINDS={
            AUTOCOMMIT: {
                "url": url,
                "isolation_level": "AUTOCOMMIT",
                "pool_reset_on_return": None,
                **options,
            }
        },
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
            if settings.ASYNC_DEBUG:
                event.listen(engine, "before_cursor_execute", _refuse_sql_on_event_loop)
