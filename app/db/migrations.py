"""Alembic from code: the head revision, the database's own, and upgrades for the embedded
default."""

import fcntl
import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Select, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

from app.config import Backend
from app.db import user_search

log = logging.getLogger(__name__)
# The migration scripts, inside this package (app/migrations), in alembic.ini's notation:
# found wherever the package is imported from, a checkout or an installed wheel.
SCRIPT_LOCATION = "app:migrations"
_alembic_version = table("alembic_version", column("version_num"))
# The revision Alembic recorded in the database (no row: never migrated; no table is an error).
SCHEMA_REVISION: Select[Any] = select(_alembic_version.c.version_num)


def alembic_config(connection: Connection | None = None) -> Config:
    """Return the project's Alembic config, bound to a connection when one is given.

    Built here, not read from alembic.ini: that file is the command line's, in a checkout
    only; what running migrations from code needs is where the scripts are.
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@dataclass(frozen=True)
class Release:
    """This release's migrations: the newest one's revision id and every one's."""

    head: str | None
    known: frozenset[str]

    def serves(self, revision: str | None) -> bool:
        """Whether this release can serve a database whose schema is at ``revision``.

        At its head, or at a migration it does not know: a newer release's, applied as the
        release step before that release rolls out, while this one still serves (migrations
        stay compatible with the code still running). Never migrated, or behind, it cannot.
        """
        return revision == self.head or (revision is not None and revision not in self.known)


@functools.cache
def release() -> Release:
    """Read this release's migration scripts (once: they do not change while it runs)."""
    script = ScriptDirectory.from_config(alembic_config())
    known = frozenset(migration.revision for migration in script.walk_revisions())
    return Release(script.get_current_head(), known)


class SchemaNotReadyError(Exception):
    """The database cannot serve this release: no file, unreachable, or not migrated to it."""


def _reason(error: SQLAlchemyError) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return (text.splitlines() or [type(error).__name__])[0]


def require_current_schema(engine: Engine, backend: Backend) -> None:
    """Raise SchemaNotReadyError, saying what to run, unless the database serves this release."""
    url = engine.url
    path = url.database if backend == "sqlite" and not url.query else None
    # Connecting would create an empty file where the path is mistyped or never migrated.
    if path and path != ":memory:" and not Path(path).exists():
        raise SchemaNotReadyError(
            f"there is no database file at {path}. Apply the migrations first: alembic "
            "upgrade head (or start the server once, for the embedded database)."
        )
    try:
        conn = engine.connect()
    except SQLAlchemyError as error:
        raise SchemaNotReadyError(f"cannot reach the database: {_reason(error)}") from error
    with conn:
        try:
            # What Alembic's MigrationContext reads, without its two INFO lines a call.
            migrated = inspect(conn).has_table("alembic_version")
            revision = conn.execute(SCHEMA_REVISION).scalar_one_or_none() if migrated else None
        except SQLAlchemyError as error:
            message = f"cannot read the database's migration: {_reason(error)}"
            raise SchemaNotReadyError(message) from error
    this = release()
    if not this.serves(revision):
        state = "has no schema yet" if revision is None else f"is at migration {revision}"
        raise SchemaNotReadyError(
            f"the database {state}; this release needs {this.head}. Apply the migrations first: "
            "alembic upgrade head (the container's migrate command)."
        )


def head_revision() -> str | None:
    """Return the newest migration's revision id."""
    return release().head


def upgrade_to_head(connection: Connection) -> None:
    """Apply every pending migration on this connection."""
    command.upgrade(alembic_config(connection), "head")


def migrate(engine: Engine) -> None:
    """Bring the database to this release's head in one transaction."""
    with engine.begin() as connection:
        migrated = inspect(connection).has_table("alembic_version")
        before = connection.execute(SCHEMA_REVISION).scalar_one_or_none() if migrated else None
        upgrade_to_head(connection)
    user_search.forget(engine)  # the schema may have gained MariaDB's side table
    # Said once, by the process that migrated: the others found nothing to do.
    if before != release().head:
        log.info("database schema migrated from %s to %s", before or "nothing", release().head)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on a file: start-up work of several processes runs in turn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
