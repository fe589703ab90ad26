"""The request session, and where its work commits.

A view says how its work commits by the block it opens, and runs each blocking call
through ``run_db`` inside it::

    async with transaction():                      # commits when the block ends
        post = await run_db(posts.create_post, user_id, body)

    async with autocommit():                       # every statement commits as it runs
        user = await run_db(users.create_user, body)

``transaction()`` is for work of several statements that must land together;
``autocommit()`` for reads and for a write that is one statement, which then costs one
round trip instead of three (BEGIN, the statement, COMMIT): the session sends it to a
second engine whose connections stay in autocommit. Services only flush.
"""

import asyncio
import contextvars
import functools
import logging
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, g
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.pool import PoolProxiedConnection

from app.config import Settings
from app.context import current_g
from app.db.base import Base
from app.db.failures import database_error_kind
from app.db.replicas import REPLICA, is_plain_read, replica_is_fresh
from app.server.loops import tasks_alive

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

# The bind key of a second engine on the same database whose connections stay in
# autocommit: a one-statement unit of work costs one round trip (no BEGIN, no COMMIT) and
# no isolation-level switch on checkout and back on return, as a per-use option would.
AUTOCOMMIT = "autocommit"
# In the session's info while a transaction(begin=...) holds: the SQL that opens it.
_BEGIN = "begin"
# In a pooled connection's info from the ORM's COMMIT on until SQL runs past SQLAlchemy on
# it or it is back in the pool: the pool need not roll back what is over (app.db.engines).
COMMITTED = "committed"
# In the session's info: its root transaction and the pooled connections it began on.
_BEGUN = "begun"


class Session(FlaskSession):
    """The request session; inside ``autocommit()`` (below) it uses the autocommit engine."""

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: Engine | Connection | None = None,
        **kwargs: Any,
    ) -> Engine | Connection:
        """Choose the autocommit engine while ``autocommit()`` holds (the replica, if any, for
        its plain reads that may be stale: app/db/replicas.py), else Flask-SQLAlchemy's."""
        if bind is None and self.info.get(AUTOCOMMIT):
            engines = self._db.engines
            if (
                REPLICA in engines
                and _BEGIN not in self.info  # a transaction(begin=...)'s reads are its own
                and is_plain_read(clause)
                and replica_is_fresh(engines[REPLICA])
            ):
                return engines[REPLICA]
            return engines[AUTOCOMMIT]
        return super().get_bind(mapper, clause, bind, **kwargs)

    def close(self) -> None:
        """Close, unless there is nothing to close: ``autocommit()`` closes the session as
        its block ends and teardown closes it again, where SQLAlchemy would still make a new
        identity map and detach no objects (~1% of a GET's instructions, bench/cpu.py)."""
        if self._transaction is None and not (self.identity_map or self._new or self._deleted):
            return
        super().close()


# Serialising after commit must not cost a SELECT per object.
db = SQLAlchemy(
    model_class=Base,
    disable_autonaming=True,
    session_options={"class_": Session, "expire_on_commit": False},
)


def autocommit_engine() -> Engine:
    """The engine for work outside the request session that commits statement by statement."""
    return db.engines[AUTOCOMMIT]


_OFFLOAD = "db_offload"  # in app.extensions
_SESSION_LOCK = "_db_session_lock"  # in flask.g: one per request
_UNIT = "_db_unit"  # in flask.g: the open transaction() or autocommit() block
_thread_state = threading.local()


class Offload:
    """An app's worker threads for blocking DB work, made on first use in each process."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0

    def submit(self, call: Callable[[], T]) -> Future[T]:
        """Start the call on a worker thread."""
        with self._lock:
            # After a fork the parent's threads are gone: make the pool again.
            if self._executor is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="db")
                self._pid = os.getpid()
            return self._executor.submit(call)

    def shutdown(self) -> None:
        """Let the worker threads end once their calls are done."""
        with self._lock:
            if self._executor is not None and self._pid == os.getpid():
                self._executor.shutdown(wait=False)
            self._executor = None


def init_app(app: Flask, settings: Settings) -> None:
    """Give the app its worker threads for run_db (DB_OFFLOAD_THREADS), ended with the app."""
    offload = app.extensions[_OFFLOAD] = Offload(settings.DB_OFFLOAD_THREADS)
    # At exit concurrent.futures joins the threads itself.
    weakref.finalize(app, offload.shutdown).atexit = False


@dataclass
class _Unit:
    autocommit: bool
    # The calls that ran in it so far: a conflict in the first is retried (see _call).
    calls: int = 0


def _session_lock() -> asyncio.Lock:
    lock: asyncio.Lock | None = g.get(_SESSION_LOCK)
    if lock is None:
        lock = asyncio.Lock()
        setattr(g, _SESSION_LOCK, lock)
    return lock


def sql_may_block_here() -> bool:
    """Whether blocking SQL is harmless on this thread: no loop runs here, or run_db said so."""
    return asyncio._get_running_loop() is None or getattr(_thread_state, "inline", False)


def _alone_on_loop(here: Any) -> bool:
    # A thread's loop serves one request at a time. When the calling task is the only one
    # on it and no offloaded call holds the session, nothing could run during a blocking
    # call: blocking delays no one, and a thread hop would cost ~150 us for nothing.
    lock: asyncio.Lock | None = here.get(_SESSION_LOCK)
    return (lock is None or not lock.locked()) and tasks_alive() == 1


async def run_db(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking DB work on the request's own scoped session, never beside a sibling.

    The call sees the request's context (so ``db.session`` is the request's session) and
    calls of one request run one at a time, even when a view gathers several of them.
    When other tasks share the loop (a gather), the call runs in a worker thread so they
    go on meanwhile; when the view's task is alone, it runs in place, on the same session.
    """
    here = current_g()
    unit: _Unit | None = here.get(_UNIT)
    if _alone_on_loop(here):
        _thread_state.inline = True
        try:
            return _call(unit, fn, args, kwargs)
        finally:
            _thread_state.inline = False
    return await _in_worker(functools.partial(_call, unit, fn, args, kwargs))


async def run_db_in_worker(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Like run_db, but always in a worker thread: for long work (an import, seconds).

    In place, such work would be one coroutine step of seconds, which asyncio's debug mode
    reports as a blocked loop; the thread hop costs nothing beside it.
    """
    return await _in_worker(functools.partial(_call, g.get(_UNIT), fn, args, kwargs))


async def _in_worker(call: Callable[[], T]) -> T:
    offload: Offload = current_app.extensions[_OFFLOAD]
    context = contextvars.copy_context()
    async with _session_lock():
        future = offload.submit(functools.partial(context.run, call))
        wrapped = asyncio.wrap_future(future)
        try:
            return await asyncio.shield(wrapped)
        except asyncio.CancelledError:
            # A thread cannot be interrupted: hold the lock until it is done with the session.
            while not future.done():
                try:
                    await asyncio.wait([wrapped])
                except asyncio.CancelledError:
                    continue
            raise


def _call(
    unit: "_Unit | None", fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> T:
    # A deadlock or serialization failure rolls the whole transaction back, and the same
    # work usually succeeds on a second try. Trying again is only trying the transaction
    # again when this call is all of it: every call under autocommit(), the first one of a
    # transaction(). Only a second conflict reaches the client (409).
    if unit is None:
        return fn(*args, **kwargs)
    first = unit.autocommit or unit.calls == 0
    unit.calls += 1
    try:
        return fn(*args, **kwargs)
    except DBAPIError as error:
        if not first or database_error_kind(error) != "conflict":
            raise
        log.info("write conflict; trying once more")
        db.session.rollback()
        return fn(*args, **kwargs)


class transaction:  # noqa: N801 - used as a function: async with transaction()
    """Commit the request session's work when the block ends; roll it back if it raises.

    With ``begin`` (SQL that opens a transaction: ``BEGIN IMMEDIATE``), the work runs on the
    autocommit engine's connection inside a transaction that statement opens, on the
    connection's first use and again after a conflict's rollback (``_call``), and that
    the DBAPI's commit ends; without, on the default engine's, begun by the driver. Not on
    MariaDB (a ValueError), whose autocommit connections skip the DBAPI's rollback.
    """

    def __init__(self, begin: str | None = None) -> None:
        self._begin = begin

    async def __aenter__(self) -> None:
        self._outer = _open_unit(autocommit=False)
        if self._begin is not None:
            session = self._session = db.session()
            if session.in_transaction():  # already begun on a connection: go on there
                self._begin = None
                return
            if db.engines[AUTOCOMMIT].dialect.skip_autocommit_rollback:
                # MariaDB's (app.db.engines): a transaction its BEGIN opened there would
                # outlive a rollback, its locks held in the pool.
                setattr(g, _UNIT, self._outer)
                msg = "transaction(begin=...) where the autocommit engine skips rollbacks"
                raise ValueError(msg)
            session.info[AUTOCOMMIT] = True
            session.info[_BEGIN] = self._begin

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if self._begin is None:
                await run_db(db.session.commit if kind is None else _roll_back)
            else:
                await run_db(_end_begun, self._session, commit=kind is None)
        finally:
            setattr(g, _UNIT, self._outer)


class autocommit:  # noqa: N801 - used as a function: async with autocommit()
    """Let every statement in the block commit as it runs: for reads and one-statement writes.

    Two writes here would be two transactions, not one: use ``transaction()`` for those.
    Inside a transaction already, the work joins it.
    """

    async def __aenter__(self) -> None:
        session = self._session = db.session()
        self._joined = session.in_transaction()
        if not self._joined:
            self._outer = _open_unit(autocommit=True)
            session.info[AUTOCOMMIT] = True

    async def __aexit__(self, *_: object) -> None:
        if self._joined:
            return
        setattr(current_g(), _UNIT, self._outer)
        # Hand the connection back now, not at teardown: there is nothing to commit.
        await run_db(_close_autocommit, self._session)


def _open_unit(*, autocommit: bool) -> "_Unit | None":
    here = current_g()
    outer: _Unit | None = here.get(_UNIT)
    setattr(here, _UNIT, _Unit(autocommit))
    return outer


def _roll_back() -> None:
    try:
        db.session.rollback()
    except SQLAlchemyError:
        # The error on its way out says what went wrong; teardown discards the session.
        log.debug("rollback after a failed unit of work failed too", exc_info=True)


def _close_autocommit(session: FlaskSession) -> None:
    del session.info[AUTOCOMMIT]
    session.close()


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    begin = session.info.get(_BEGIN)
    if begin is not None:
        driver_execute(connection, begin)
    if not transaction.nested:
        begun: tuple[SessionTransaction, list[PoolProxiedConnection]] | None
        begun = session.info.get(_BEGUN)
        if begun is None or begun[0] is not transaction:
            session.info[_BEGUN] = begun = (transaction, [])
        begun[1].append(connection.connection)


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    # Every connection the root transaction began has committed (a savepoint's release
    # commits nothing): COMMITTED says so to the pool, through the ORM's event, as an
    # engine's commit event would make each statement dispatch its (empty) engine events.
    if session.in_nested_transaction():
        return
    begun = session.info.pop(_BEGUN, None)
    if begun is not None and begun[0] is session.get_transaction():
        for pooled in begun[1]:
            pooled.info[COMMITTED] = True


def driver_cursor(connection: Connection, statement: str, parameters: Any = ()) -> Any:
    """Run SQL on a new cursor of the connection's DBAPI connection and return the cursor
    (the caller closes it), past SQLAlchemy's execute: its context, its result, its cursor
    events (no trace span). The driver's error is raised as SQLAlchemy's would be (a lost
    connection is invalidated by the next statement SQLAlchemy runs on it). On SQLite an
    event's INSERT costs ~34,000 instructions less so than through exec_driver_sql, and
    the row before an update ~115,000 less than through Core's execute (callgrind, as
    bench/events.py --instructions)."""
    dialect = connection.dialect
    pooled = connection.connection
    # SQL past SQLAlchemy may open a transaction it does not know of: the pool rolls it back.
    pooled.info.pop(COMMITTED, None)
    cursor = pooled.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement, parameters)
    except dialect.loaded_dbapi.Error as error:
        cursor.close()
        raise DBAPIError.instance(
            statement, parameters, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error
    return cursor


def driver_execute(connection: Connection, statement: str, parameters: Any = ()) -> None:
    """``driver_cursor`` for SQL whose result nothing reads."""
    driver_cursor(connection, statement, parameters).close()


def _end_begun(session: FlaskSession, *, commit: bool) -> None:
    # The ORM's commit (its after_commit hooks run), whose DBAPI commit ends the transaction
    # the BEGIN opened; close() rolls back what did not commit, as the DBAPI's rollback.
    try:
        if commit:
            session.commit()
    finally:
        del session.info[_BEGIN]
        _close_autocommit(session)
