"""Which database failures are outages (503), write conflicts (409) or faults (500).

Both drivers' errors (SQLAlchemy's over psycopg or sqlite3, asyncpg's) and sockets'.
"""

from typing import Literal

import asyncpg
from sqlalchemy import exc as sa_exc

# What database work can raise, through SQLAlchemy or asyncpg (bulk COPY, fan-out reads,
# readiness), sockets included; database_error_kind() tells an outage from a fault.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
# Errors with no SQLSTATE that mean the server was not reached or went away: refused,
# reset, timed out, pool exhausted, connection closed; SQLite locked or gone.
_UNAVAILABLE_WITHOUT_STATE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
)

# SQLSTATE classes and codes that say the server cannot do the work now, not that the work
# is wrong: connection failures (08), resources (53), operator intervention and query
# cancelled by statement_timeout (57), system errors (58), lock_timeout (55P03) and
# idle_in_transaction_session_timeout (25P03).
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58"})
_UNAVAILABLE_CODES = frozenset({"55P03", "25P03"})
# Class 40: transaction rollback (serialization failure, deadlock): a conflict with
# another writer, which the same request may well win when it is tried again.
_CONFLICT_CLASS = "40"

DatabaseErrorKind = Literal["unavailable", "conflict", "fault"]


def _sqlstate(error: BaseException) -> str | None:
    # psycopg's errors carry .sqlstate, asyncpg's too; SQLAlchemy wraps the driver's in .orig.
    driver = getattr(error, "orig", None) or error
    state = getattr(driver, "sqlstate", None)
    return state if isinstance(state, str) else None


def database_error_kind(error: BaseException) -> DatabaseErrorKind:
    """Say whether a driver error means an outage (503), a write conflict (409) or a fault."""
    state = _sqlstate(error)
    if state is None:
        return "unavailable" if isinstance(error, _UNAVAILABLE_WITHOUT_STATE) else "fault"
    if state.startswith(_CONFLICT_CLASS):
        return "conflict"
    if state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_CODES:
        return "unavailable"
    return "fault"


def describe(error: BaseException) -> str:
    """One line for the log: the error's type, SQLSTATE and the first line of its message."""
    driver = getattr(error, "orig", None) or error
    first_line = (str(driver).strip().splitlines() or [""])[0][:200]
    state = _sqlstate(error)
    return f"{type(driver).__name__}{f' [{state}]' if state else ''}: {first_line}"
