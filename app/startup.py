"""What a starting server says first: where it listens, its sizing, its database (never a
credential), the connection ceiling, and whether anyone can call it yet (keys, admins).

The server's master process (app.server.serve) logs these lines before it forks a worker, so
an operator reads them once, not once a worker.
"""

from sqlalchemy import Connection, create_engine, func, inspect, pool, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from app.config import DEFAULT_MAX_CONNECTIONS, Settings, available_cpus, connection_ceiling
from app.models.api_key import ApiKey
from app.models.group import Group, GroupMember
from app.models.user import User
from app.schemas.scopes import Scope

_CREATE_KEY = "flask --app app api-keys create NAME --scope users:read ..."
_ADMIN = "flask --app app users create-admin USERNAME EMAIL"
ADMIN_SCOPE: Scope = "users:admin"


def database_name(settings: Settings) -> str:
    """The database as an operator names it: backend, user, host, port, database; no password
    and no query string (where a driver option may hold one)."""
    if settings.embedded:
        return f"sqlite (embedded) {settings.embedded_database}"
    url = make_url(settings.database_url)
    # Built anew from the parts that are safe to show (URL.set takes None as "unchanged").
    safe = URL.create(url.drivername, url.username, None, url.host, url.port, url.database)
    return f"{settings.backend} {safe.render_as_string().split('://', 1)[1]}"


def sizing(settings: Settings) -> str:
    """Processes, threads and, where the processes outnumber the CPUs, why that is meant."""
    cpus = available_cpus()
    line = f"{settings.WEB_CONCURRENCY} processes x {settings.WEB_THREADS} threads on {cpus} CPUs"
    if "WEB_CONCURRENCY" not in settings.model_fields_set and cpus < settings.WEB_CONCURRENCY:
        # granian warns of more workers than CPUs; at this default that is measured, not a slip.
        line += " (2 a CPU by default: a process's threads share one GIL, so processes scale)"
    return line


def ceiling(settings: Settings) -> str:
    """The most connections the server opens to its database, against what it may."""
    if settings.backend == "sqlite":
        return "database connections: no ceiling (SQLite, a file)"
    counted = connection_ceiling(settings)
    budget = counted.budget
    source = (
        "DB_MAX_CONNECTIONS"
        if settings.DB_MAX_CONNECTIONS
        else f"default, of max_connections {DEFAULT_MAX_CONNECTIONS[settings.backend][1]}"
    )
    return f"database connections at most: {counted} of {budget} ({source})"


def keys(settings: Settings) -> str:
    """Whether an API key exists, read once with a connection of its own (closed at once)."""
    if settings.embedded and not settings.embedded_database.exists():
        return "API keys: none yet; the first start makes a local one and prints it below"
    engine = create_engine(settings.database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(ApiKey.__tablename__):
                return "API keys: the database has no schema yet (alembic upgrade head)"
            active = select(func.count()).where(ApiKey.revoked_at.is_(None))
            count = connection.execute(active).scalar_one()
            admins = _admins(connection)
    except SQLAlchemyError as error:
        return f"API keys: not known, the database did not answer ({type(error).__name__})"
    finally:
        engine.dispose()
    people = f"; admins who sign in: {admins}" if admins else f"; no admin signs in yet: {_ADMIN}"
    if count:
        return f"API keys: {count} not revoked{people}"
    if settings.embedded:
        return f"API keys: none; the first start makes a local one and prints it below{people}"
    return f"API keys: none, so every data endpoint answers 401 ({_CREATE_KEY}){people}"


def _admins(connection: Connection) -> int:
    # Active users in a group that grants users:admin. The groups are few and their scopes a
    # JSON list, which the three backends query differently: read them here.
    groups = connection.execute(select(Group.id, Group.scopes)).all()
    admin_groups = [group_id for group_id, scopes in groups if ADMIN_SCOPE in scopes]
    if not admin_groups:
        return 0
    members = (
        select(func.count(func.distinct(GroupMember.user_id)))
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.group_id.in_(admin_groups), User.active.is_(True))
    )
    return int(connection.execute(members).scalar_one())


def report(settings: Settings, address: str | None = None) -> list[str]:
    """The lines a server logs as it starts, in order; ``address``: flask run's, whose
    processes and threads are its own (one process, a thread a request)."""
    if address is not None:
        served = f"serving {address} with flask run (development: use python -m app.server)"
    else:
        served = f"serving http://{settings.HOST}:{settings.PORT} with {sizing(settings)}"
    return [
        served,
        f"database: {database_name(settings)}",
        ceiling(settings),
        keys(settings),
    ]
