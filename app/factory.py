"""The application factory: ``create_app()`` wires settings, database, routes and CLI."""

import atexit
import functools
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI
from sqlalchemy import Engine, event

from app import (
    auth,
    cli,
    deadlines,
    models,  # noqa: F401 - registers every table on the metadata
    openapi,
    pg,
)
from app.aio import run_coroutine, sql_may_block_here
from app.api import auth as auth_api
from app.api import docs, ops, posts, users
from app.api.common import IdConverter, operation_id_for, raise_validation_error, require_json_body
from app.config import Settings, sqlalchemy_url
from app.errors import register_error_handlers
from app.extensions import AUTOCOMMIT, SETTINGS, db
from app.migrations import file_lock, release_revisions, upgrade_to_head
from app.observability import configure_logging
from app.observability import init_app as init_request_ids
from app.services.api_keys import ALL_SCOPES, create_api_key, has_api_keys

__all__ = ["App", "create_app"]

log = logging.getLogger(__name__)
atexit.register(pg.close)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside a writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _engine_options(url: str, settings: Settings) -> dict[str, Any]:
    if url.startswith("sqlite"):
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


class App(OpenAPI):
    """The Flask app: coroutine views run on long-lived loops, not a new loop per request."""

    def async_to_sync(self, func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        """Run coroutine views (and hooks) on the calling thread's own long-lived loop."""
        return functools.partial(run_coroutine, func)


def create_app(settings: Settings | None = None) -> App:
    """Build the application from settings (read from the environment when not given)."""
    settings = settings or Settings()
    configure_logging(settings.LOG_LEVEL)
    instance_path = (settings.INSTANCE_PATH or Path.cwd() / "instance").resolve()
    embedded = settings.DATABASE_URL is None
    if embedded:
        instance_path.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{instance_path / 'app.db'}"
    else:
        url = sqlalchemy_url(str(settings.DATABASE_URL))

    app = App(
        __name__,
        info=Info(title="User management API", version="1.0.0"),
        instance_path=str(instance_path),
        validation_error_callback=raise_validation_error,
        operation_id_callback=operation_id_for,
        # Our own /openapi.json (finished once, see app.openapi) and /docs (local assets).
        doc_ui=False,
        security_schemes=auth.SECURITY_SCHEMES,
    )
    engine_options = _engine_options(url, settings)
    head, known = release_revisions()
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options,
        # Its connections never hold a transaction, so there is nothing to reset on return.
        SQLALCHEMY_BINDS={
            AUTOCOMMIT: {
                "url": url,
                "isolation_level": "AUTOCOMMIT",
                "pool_reset_on_return": None,
                **engine_options,
            }
        },
        SQLALCHEMY_ECHO=settings.SQL_ECHO,
        MAX_CONTENT_LENGTH=settings.MAX_CONTENT_LENGTH,
        DB_OFFLOAD_THREADS=settings.DB_OFFLOAD_THREADS,
        DB_PGBOUNCER=settings.DB_PGBOUNCER,
        ASYNCPG_POOL_SIZE=settings.ASYNCPG_POOL_SIZE,
        ASYNC_DEBUG=settings.ASYNC_DEBUG,
        DB_CONNECT_TIMEOUT=settings.DB_CONNECT_TIMEOUT,
        DB_POOL_TIMEOUT=settings.DB_POOL_TIMEOUT,
        ALEMBIC_HEAD=head,
        ALEMBIC_REVISIONS=known,
    )
    app.extensions[SETTINGS] = settings
    app.url_map.converters["id"] = IdConverter
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_on_connect)
            else:
                deadlines.watch(engine, settings.client_deadline)
            if settings.ASYNC_DEBUG:
                event.listen(engine, "before_cursor_execute", _refuse_sql_on_event_loop)
        if settings.AUTO_MIGRATE if settings.AUTO_MIGRATE is not None else embedded:
            with file_lock(instance_path / "setup.lock"):
                _migrate(db.engine, app.config["ALEMBIC_HEAD"])
                if embedded:
                    _print_first_local_key()

    register_error_handlers(app)
    init_request_ids(app)
    # Credentials first: a caller without a key learns nothing about bodies or routes' rules.
    auth.init_app(app)
    app.before_request(require_json_body)
    for blueprint in (ops.bp, auth_api.bp, users.bp, posts.bp):
        app.register_api(blueprint)
    auth.document_security(app)
    app.register_blueprint(docs.bp)
    app.extensions["openapi_document"] = openapi.finish(app.api_doc)
    cli.init_app(app)
    return app


def _migrate(engine: Engine, head: str | None) -> None:
    with engine.begin() as connection:
        upgrade_to_head(connection)
    log.info("database schema at %s", head)


def _print_first_local_key() -> None:
    # Secure by default, easy locally: like a notebook server's token, shown once.
    if has_api_keys():
        return
    _, token = create_api_key("local", list(ALL_SCOPES))
    db.session.commit()
    db.session.remove()
    sys.stderr.write(
        "\n  Created a local API key with every scope. It is shown only this once:\n\n"
        f"    {token}\n\n"
        f'  Try: curl -H "Authorization: Bearer {token}" http://127.0.0.1:5000/users\n'
        "  (5000 is the port of flask run; use yours.)\n"
        "  More keys: flask --app app api-keys create NAME --scope users:read ...\n\n"
    )
