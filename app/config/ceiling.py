"""The connections a server opens to its database, and the pool sizes that keep under them."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config.settings import Settings

# DB_MAX_CONNECTIONS when unset, of the server's default max_connections: PostgreSQL 80 of
# 100, less 3 superuser_reserved_connections and 17 for the operator's psql, Alembic, flask
# commands, pg_dump, monitoring (walsenders count apart since PostgreSQL 12); MariaDB 120 of
# 151, less 31 for the same and each replica's binlog dump. SQLite: no ceiling.
DEFAULT_MAX_CONNECTIONS = {"postgresql": (80, 100), "mysql": (120, 151)}


@dataclass(frozen=True)
class ConnectionCeiling:
    """The most connections the server opens to its database: each process's, and in all.
    Every connection the app opens is a pool's (an import's spare is asyncpg's), or LISTEN."""

    processes: int
    terms: tuple[tuple[str, int], ...]  # per process: (what, sized by which settings; count)
    per_process: int
    total: int
    budget: int | None  # DB_MAX_CONNECTIONS or the backend's; None: no ceiling (SQLite)
    replica: int  # per process, on DATABASE_REPLICA_URL's server (a streaming replica's own)

    def __str__(self) -> str:
        terms = " + ".join(f"{what} {count}" for what, count in self.terms)
        return f"WEB_CONCURRENCY {self.processes} x ({terms} = {self.per_process}) = {self.total}"


def connection_ceiling(settings: "Settings") -> ConnectionCeiling:
    """The most connections this server (per process, and in all) opens to its database."""
    size, overflow, backend = settings.DB_POOL_SIZE, settings.DB_MAX_OVERFLOW, settings.backend
    pool = size + overflow
    terms = [(f"transactions pool [DB_POOL_SIZE {size} + DB_MAX_OVERFLOW {overflow}]", pool)]
    terms.append(("autocommit pool [the same]", pool))
    if backend == "postgresql":
        terms += [("asyncpg pool [ASYNCPG_POOL_SIZE]", settings.ASYNCPG_POOL_SIZE), ("LISTEN", 1)]
    if backend == "sqlite":
        return ConnectionCeiling(settings.WEB_CONCURRENCY, (), 0, 0, None, 0)
    per, processes = sum(count for _, count in terms), settings.WEB_CONCURRENCY
    budget = settings.DB_MAX_CONNECTIONS or DEFAULT_MAX_CONNECTIONS[backend][0]
    replica = pool if settings.replica_url is not None else 0
    return ConnectionCeiling(processes, tuple(terms), per, processes * per, budget, replica)


def size_pools(settings: "Settings") -> None:
    """Size the pools left unset to fit DB_MAX_CONNECTIONS (the settings' validator calls it)."""
    # Unset sizes are derived, set ones stay. A process's least: each SQLAlchemy pool
    # WEB_THREADS (a thread holds one connection at a time, from either pool; the offload
    # threads run a request's calls one at a time) + EXPORTS_PER_PROCESS (an export holds one
    # with no thread), asyncpg 2 (an import, GET /readyz beside it), LISTEN 1. Unset,
    # WEB_CONCURRENCY is capped to what the budget holds of that (80 // 17 = 4 at 4 + 3); the
    # share past it goes to the unset pools, up to the fields' defaults (10 + 10 each, 10).
    given, fields = settings.model_fields_set, type(settings).model_fields
    threads, postgresql = settings.WEB_THREADS, settings.backend == "postgresql"
    size, overflow = settings.DB_POOL_SIZE, settings.DB_MAX_OVERFLOW
    fixed_engine = {"DB_POOL_SIZE", "DB_MAX_OVERFLOW"} <= given
    least_engine = size + overflow if fixed_engine else threads + settings.EXPORTS_PER_PROCESS
    least_engine = max(least_engine, size if "DB_POOL_SIZE" in given else 0)
    least_engine = max(least_engine, overflow + 1 if "DB_MAX_OVERFLOW" in given else 0)
    fixed_asyncpg = not postgresql or "ASYNCPG_POOL_SIZE" in given
    least_asyncpg = settings.ASYNCPG_POOL_SIZE if fixed_asyncpg else 2
    least = 2 * least_engine + (least_asyncpg + 1 if postgresql else 0)
    budget = settings.DB_MAX_CONNECTIONS or DEFAULT_MAX_CONNECTIONS[settings.backend][0]
    if "WEB_CONCURRENCY" not in given:  # through __dict__: assigned, it would count as given
        settings.__dict__["WEB_CONCURRENCY"] = min(settings.WEB_CONCURRENCY, budget // least or 1)
    growing = (0 if fixed_engine else 2) + (0 if fixed_asyncpg else 1)
    share = budget // settings.WEB_CONCURRENCY
    more = max(0, share - least) // max(1, growing)
    if not fixed_engine:
        most = int(fields["DB_POOL_SIZE"].default + fields["DB_MAX_OVERFLOW"].default)
        engine = max(least_engine, min(least_engine + more, most))
        if "DB_POOL_SIZE" not in given:
            kept = engine - overflow if "DB_MAX_OVERFLOW" in given else min(threads, engine)
            settings.__dict__["DB_POOL_SIZE"] = kept
        settings.__dict__["DB_MAX_OVERFLOW"] = engine - settings.DB_POOL_SIZE
    if not fixed_asyncpg:  # what the SQLAlchemy pools and LISTEN leave, the division's rest too
        left = share - 2 * (settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW) - 1
        most = int(fields["ASYNCPG_POOL_SIZE"].default)
        settings.__dict__["ASYNCPG_POOL_SIZE"] = max(least_asyncpg, min(left, most))
