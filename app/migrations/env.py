"""Alembic environment: the URL comes from Settings, the metadata from our models."""

import logging
import warnings
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from app import models  # noqa: F401 - registers every table on the metadata
from app.config import Settings
from app.db import user_search
from app.db.base import Base
from app.db.types import PREFIX_INDEXES, SEARCH_INDEXES

config = context.config
target_metadata = Base.metadata

# SQLite cannot reflect expression indexes (our case-insensitive unique indexes on lower(...)),
# so SQLAlchemy and Alembic warn and leave them out of the comparison there. PostgreSQL
# reflects and compares them, and CI checks both databases, so their drift is still caught.
_SQLITE_EXPRESSION_INDEX_WARNINGS = (
    r"Skipped unsupported reflection of expression-based index ",
    r"autogenerate skipping metadata-specified expression-based index ",
)


def _folded_index_note(record: logging.LogRecord) -> bool:
    """Drop Alembic's note that it compares our case-folded unique indexes approximately.

    On MariaDB they index the column itself (its collation folds case), which is exactly
    what Alembic compares: their columns. The note would print on every `alembic check`.
    """
    message = record.getMessage()
    return not (message.startswith("Generating approximate signature") and "_lower'" in message)


def _include(
    _item: object, name: str | None, type_: str, reflected: bool, _compare_to: object
) -> bool:
    """Leave the PostgreSQL-only search indexes (migrations 0012, 0016) and MariaDB's side
    table where Mroonga is installed (0017) out of the drift check: the models hold what
    every backend has."""
    if type_ == "table":
        return not (reflected and name in user_search.TABLES)
    optional = name in SEARCH_INDEXES or name in PREFIX_INDEXES or name == user_search.UPDATED_INDEX
    return not (type_ == "index" and reflected and optional)


def _url(*, online: bool = False) -> str:
    explicit = config.get_main_option("sqlalchemy.url")
    if explicit:
        return explicit
    settings = Settings()
    if online and settings.embedded:
        # `alembic upgrade head` may be what first makes the embedded database.
        settings.instance_path.mkdir(parents=True, exist_ok=True)
    return settings.database_url


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    impl_log = logging.getLogger("alembic.ddl.impl")
    named = {getattr(f, "__name__", None) for f in impl_log.filters}  # env.py runs per command
    if connection.dialect.name == "mysql" and _folded_index_note.__name__ not in named:
        impl_log.addFilter(_folded_index_note)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=sqlite,
        compare_type=True,
        include_object=_include,
    )
    with warnings.catch_warnings():
        if sqlite:
            for message in _SQLITE_EXPRESSION_INDEX_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the app's connection when given one, else a fresh engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if config.config_file_name is not None:
        # alembic.ini's handler takes the formatter LOG_FORMAT names: text, or JSON lines
        # (the container's migrate command) with the same fields as the server's.
        fileConfig(
            config.config_file_name,
            defaults={"log_format": Settings().LOG_FORMAT},
            disable_existing_loggers=False,
        )
    engine = create_engine(_url(online=True), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
