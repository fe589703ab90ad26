"""Code run against the app outside a request: a script, a cron job, a notebook cell.

``with script():`` builds the app (or takes one), pushes its app context, checks the database
is migrated to this release (else it exits 1 saying what to run), and cleans up afterwards.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from app.config import Settings, current_settings
from app.db import migrations
from app.db.session import db
from app.factory import create_app


@contextmanager
def script(app: Flask | None = None, *, settings: Settings | None = None) -> Iterator[Flask]:
    """Run the block in an app context on a migrated database, or exit 1 saying why."""
    if app is not None and settings is not None:
        msg = "pass an app or settings to build one, not both"
        raise TypeError(msg)
    built = app is None
    # Never migrates or makes a key: create_app does that only for a server.
    app = create_app(settings) if app is None else app
    try:
        with app.app_context():
            try:
                migrations.require_current_schema(db.engine, current_settings().backend)
            except migrations.SchemaNotReadyError as error:
                # SystemExit with a text prints it to stderr and exits with status 1.
                raise SystemExit(f"Error: {error}") from None
            try:
                yield app
            except BaseException:
                db.session.rollback()
                raise
            finally:
                # No commit here: as in a view, the block that does the work commits it, and
                # what it left uncommitted is discarded, as at the end of a request.
                db.session.remove()
    finally:
        if built:
            # A cron job's connections close as it ends, not whenever the process is reaped.
            with app.app_context():
                for engine in db.engines.values():
                    engine.dispose()
