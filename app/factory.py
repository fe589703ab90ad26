"""The application factory: ``create_app()`` wires settings, database, routes and CLI."""

import functools
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import click
from flask.cli import run_command
from flask.ctx import _AppCtxGlobals
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI

from app import (
    cli,
    models,  # noqa: F401 - registers every table on the metadata
    scim,
)
from app.api import audit, docs, groups, mail, me, openapi, ops, posts, users, webhooks
from app.api import auth as auth_api
from app.api.common import IdConverter, operation_id_for, raise_validation_error
from app.config import SETTINGS, VERSION, Settings
from app.db import asyncpg_pool, engines, migrations, notifications, session
from app.db.session import db
from app.server.loops import run_coroutine
from app.services import api_keys, sessions
from app.telemetry import metrics
from app.telemetry.logs import configure_logging
from app.web import auth, pipeline, responses

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["App", "create_app"]
log = logging.getLogger(__name__)


class Globals(_AppCtxGlobals):
    """``flask.g``, its attributes set as any object's are: Flask's ``__setattr__`` is a
    Python call that does what ``object``'s does, 7 a cached-key GET (issue #39)."""

    __setattr__ = object.__setattr__  # type: ignore[assignment]  # the same, in C


class App(OpenAPI):
    """The Flask app: coroutine views run on long-lived loops, not a new loop per request."""

    # Report coroutine steps that block the loop (ASYNC_DEBUG, set by the tests).
    loop_debug = False
    # Sent without werkzeug's copy of its headers where the copy changes nothing.
    response_class = responses.Response
    app_ctx_globals_class = Globals

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's, decided once per function: Flask inspects the function at every call,
        for each hook, view and teardown of every request."""
        try:
            return self._synced[func]
        except KeyError:
            synced = self._synced[func] = super().ensure_sync(func)
            return synced

    def async_to_sync(self, func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        """Run coroutine views (and hooks) on the calling thread's own long-lived loop."""
        return functools.partial(run_coroutine, self.loop_debug, func)


def create_app(
    settings: Settings | None = None,
    *,
    serving: bool = False,
    tracer_provider: "TracerProvider | None" = None,
) -> App:
    """Build the application; ``serving``: this process is the server (python -m app.server)."""
    # tracer_provider: a test's, to trace into; otherwise the OTEL_* variables decide.
    settings = settings or Settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    app = App(
        __name__,
        info=Info(title="User management API", version=VERSION),
        instance_path=str(settings.instance_path),
        validation_error_callback=raise_validation_error,
        operation_id_callback=operation_id_for,
        # Our own /openapi.json (finished once, see app.openapi) and /docs (local assets).
        doc_ui=False,
        security_schemes=auth.SECURITY_SCHEMES,
    )
    app.extensions[SETTINGS] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_CONTENT_LENGTH
    app.loop_debug = settings.ASYNC_DEBUG
    app.url_map.converters["id"] = IdConverter
    engines.init_app(app, settings)
    session.init_app(app, settings)
    asyncpg_pool.init_app(app, settings)
    # Only a server (or flask run) migrates and makes the first key: a script, another flask
    # command or alembic must never make a database where there was none, nor print a key.
    if _under_flask_run():
        # What python -m app.server's master says first (app.startup); here the app is built
        # once a run (the reloader's child too), not once a worker.
        from app.startup import report  # noqa: PLC0415 - flask run only

        for line in report(settings, _address(settings)):
            log.info("%s", line)
    serving = serving or _under_flask_run()
    if serving and settings.migrates_on_start:
        _set_up_database(app, settings)
    if serving and settings.backend == "postgresql":
        # A key or session revoked anywhere stops working in this process at once (NOTIFY
        # at commit).
        notifications.listen(
            settings, api_keys.REVOKED_CHANNEL, sessions.forget_revoked, sessions.forget_everything
        )

    metrics.record_build(VERSION, migrations.release().head)
    # Every hook around the views, in its order (the list is in app/web/pipeline.py).
    pipeline.install(app, settings, tracer_provider)
    blueprints = (
        *(ops.bp, auth_api.bp, mail.bp, me.bp, users.bp, posts.bp, groups.bp, audit.bp),
        webhooks.bp,
    )
    for blueprint in blueprints:
        app.register_api(blueprint)
    auth.document_security(app)
    app.register_blueprint(docs.bp)
    app.register_blueprint(scim.bp)  # SCIM's own protocol: outside the OpenAPI document
    app.extensions[openapi.DOCUMENT] = openapi.finish(app.api_doc)
    cli.init_app(app)
    return app


def _under_flask_run() -> bool:
    # flask run loads the app inside its own command, in the reloader's child too (which runs
    # the command again); other flask commands load it in the group's context, before theirs.
    context = click.get_current_context(silent=True)
    return context is not None and context.command is run_command


def _address(settings: Settings) -> str:
    # Where this server answers: flask run's --host and --port, else the production server's.
    context = click.get_current_context(silent=True)
    if context is not None and context.command is run_command:
        host, port = context.params.get("host", "127.0.0.1"), context.params.get("port", 5000)
    else:
        host, port = settings.HOST, settings.PORT
    return f"http://{'127.0.0.1' if host in {'0.0.0.0', '::'} else host}:{port}"  # noqa: S104


def _set_up_database(app: App, settings: Settings) -> None:
    # Several processes may start at once (the server's workers): one migrates at a time.
    with app.app_context(), migrations.file_lock(settings.instance_path / "setup.lock"):
        migrations.migrate(db.engine)
        if settings.embedded and not api_keys.has_api_keys():
            # Secure by default, easy locally: like a notebook server's token, shown once.
            _, token = api_keys.create_api_key("local", list(api_keys.ALL_SCOPES))
            db.session.commit()
            db.session.remove()
            if settings.LOG_FORMAT == "json":
                # A log shipper reads stderr: one record, not a banner of bare lines.
                log.warning("created a local API key with every scope, shown once: %s", token)
                return
            sys.stderr.write(
                "\n  Created a local API key with every scope. It is shown only this once:\n\n"
                f"    {token}\n\n"
                f'  Try: curl -H "Authorization: Bearer {token}" {_address(settings)}/users\n'
                "  More keys: flask --app app api-keys create NAME --scope users:read ...\n"
                "  An admin who signs in: flask --app app users create-admin USERNAME EMAIL\n\n"
            )
