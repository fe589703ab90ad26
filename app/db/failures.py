"""Which database failures are outages (503), write conflicts (409) or faults (500).

The drivers' errors (SQLAlchemy's over psycopg, PyMySQL or sqlite3, asyncpg's) and sockets'.
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

# MariaDB's error numbers, first in a PyMySQL error's .args; they are read instead of its
# SQLSTATE, which is HY000 for most (a lock wait timeout) or absent (a refused connection).
# Outages: too many connections, shutting down, lock wait timeout, query interrupted or
# killed, max_statement_time (MariaDB) or max_execution_time (MySQL) passed, idle
# transaction ended, and the client's cannot connect, server gone, connection lost.
_MYSQL_UNAVAILABLE = frozenset(
    {1040, 1053, 1205, 1317, 1927, 1969, 3024, 4031, 2002, 2003, 2006, 2013, 2055}
)
# A deadlock, or a row changed under a consistent read: another writer won this time.
_MYSQL_CONFLICTS = frozenset({1213, 1020})

DatabaseErrorKind = Literal["unavailable", "conflict", "fault"]


def _driver_error(error: BaseException) -> BaseException:
    # SQLAlchemy wraps the driver's error in .orig; asyncpg's and sockets' come bare.
    driver: BaseException = getattr(error, "orig", None) or error
    return driver


def _mysql_code(error: BaseException) -> int | None:
    driver = _driver_error(error)
    if not type(driver).__module__.startswith("pymysql"):
        return None
    code = driver.args[0] if driver.args else None
    return code if isinstance(code, int) else None


def _sqlstate(error: BaseException) -> str | None:
    # psycopg's errors carry .sqlstate, asyncpg's too.
    state = getattr(_driver_error(error), "sqlstate", None)
    return state if isinstance(state, str) else None


def database_error_kind(error: BaseException) -> DatabaseErrorKind:
    """Say whether a driver error means an outage (503), a write conflict (409) or a fault."""
    code = _mysql_code(error)
    if code is not None:
        if code in _MYSQL_CONFLICTS:
            return "conflict"
        return "unavailable" if code in _MYSQL_UNAVAILABLE else "fault"
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
    driver = _driver_error(error)
    first_line = (str(driver).strip().splitlines() or [""])[0][:200]
    code = _mysql_code(error)
    state = str(code) if code is not None else _sqlstate(error)
    return f"{type(driver).__name__}{f' [{state}]' if state else ''}: {first_line}"
