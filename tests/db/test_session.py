"""Where request work commits: transaction() at the end of its block, autocommit() at once."""

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine
from contextlib import closing
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app import create_app
from app.config import Settings
from app.db.session import autocommit, db, driver_execute, run_db, transaction
from app.models import User
from app.schemas.users import UserCreate
from app.services import users
from tests.factories import make_user

T = TypeVar("T")

# A real serialization failure (SQLSTATE 40001) raised by PostgreSQL itself.
CONFLICT = "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$"


def _in_request(app: Flask, view: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with app.test_request_context():
        return asyncio.run(view())


def _seen_elsewhere() -> set[str]:
    # What another connection sees: only what has been committed.
    with db.engine.connect() as other:
        return set(other.execute(select(User.username)).scalars())


def _stored(app: Flask) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(User)).scalar_one())


def _two_users() -> None:
    users.create_user(UserCreate(username="one", email="one@x.io"))
    users.create_user(UserCreate(username="two", email="two@x.io"))


# transaction(begin=...) is refused on MariaDB (test below): its plain twin runs there.
_BEGUN = pytest.param(True, marks=pytest.mark.backends("sqlite", "postgresql", reason="begin="))


def _unit(backend: str, begun: bool) -> transaction:
    # A plain transaction(), or one opened by its own BEGIN (SQLite's takes the write lock
    # at once): the same guarantees either way.
    if not begun:
        return transaction()
    return transaction(begin="BEGIN IMMEDIATE" if backend == "sqlite" else "BEGIN")


@pytest.mark.parametrize("begun", [False, _BEGUN], ids=["plain", "begun"])
def test_transaction_commits_its_work_when_the_block_ends(
    app: Flask, backend: str, begun: bool
) -> None:
    async def view() -> tuple[set[str], set[str]]:
        async with _unit(backend, begun):
            await run_db(_two_users)
            during = await run_db(_seen_elsewhere)
        return during, await run_db(_seen_elsewhere)

    during, after = _in_request(app, view)
    assert during == set()
    assert after == {"one", "two"}


@pytest.mark.parametrize("begun", [False, _BEGUN], ids=["plain", "begun"])
def test_transaction_rolls_everything_back_when_the_block_raises(
    app: Flask, backend: str, begun: bool
) -> None:
    async def view() -> None:
        async with _unit(backend, begun):
            await run_db(_two_users)
            raise LookupError

    with pytest.raises(LookupError):
        _in_request(app, view)
    assert _stored(app) == 0


@pytest.mark.backends("mysql", reason="MariaDB's autocommit engine skips rollbacks")
def test_a_transaction_begun_by_sql_is_refused_on_mariadb(app: Flask, backend: str) -> None:
    # A ROLLBACK skipped because the connection says autocommit would leave the BEGIN's
    # transaction open in the pool, with its locks.
    async def view() -> None:
        async with transaction(begin="BEGIN"):
            await run_db(_two_users)

    with pytest.raises(ValueError, match="skips rollbacks"):
        _in_request(app, view)
    assert _stored(app) == 0


def test_autocommit_commits_each_statement_as_it_runs(app: Flask) -> None:
    async def view() -> set[str]:
        async with autocommit():
            await run_db(users.create_user, UserCreate(username="now", email="now@x.io"))
            return await run_db(_seen_elsewhere)

    assert _in_request(app, view) == {"now"}


class _FailsOnce:
    """Creates a user; its first call meets a write conflict from PostgreSQL instead.

    In a transaction the first call writes before the conflict, which the rollback undoes;
    under autocommit the work is one statement, as there it must be.
    """

    def __init__(self, *, write_first: bool = True) -> None:
        self.calls = 0
        self.write_first = write_first

    def __call__(self) -> None:
        self.calls += 1
        if self.calls > 1 or self.write_first:
            users.create_user(UserCreate(username=f"try{self.calls}", email=f"t{self.calls}@x.io"))
        if self.calls == 1:
            db.session.execute(text(CONFLICT))


async def _in_transaction(work: _FailsOnce) -> None:
    async with transaction():
        await run_db(work)


async def _in_autocommit(work: _FailsOnce) -> None:
    async with autocommit():
        await run_db(work)


@pytest.mark.postgresql_only("the write conflict is raised by PostgreSQL")
@pytest.mark.parametrize(
    ("unit", "write_first"), [(_in_transaction, True), (_in_autocommit, False)]
)
def test_a_conflict_in_the_first_call_is_tried_once_more(
    app: Flask,
    backend: str,
    unit: Callable[[_FailsOnce], Coroutine[Any, Any, None]],
    write_first: bool,
) -> None:
    work = _FailsOnce(write_first=write_first)
    _in_request(app, lambda: unit(work))
    assert work.calls == 2
    with app.app_context():
        # The first try was rolled back as a whole, its user with it.
        assert set(db.session.execute(select(User.username)).scalars()) == {"try2"}


def test_a_begun_transaction_in_a_session_already_begun_goes_on_there(
    app: Flask, backend: str
) -> None:
    # Not a second connection: on SQLite its BEGIN IMMEDIATE would wait for the first's lock.
    async def view() -> tuple[set[str], set[str]]:
        async with transaction():
            await run_db(users.create_user, UserCreate(username="outer", email="o@x.io"))
            async with _unit(backend, begun=True):
                await run_db(users.create_user, UserCreate(username="inner", email="i@x.io"))
                during = await run_db(_seen_elsewhere)
        return during, await run_db(_seen_elsewhere)

    assert _in_request(app, view) == (set(), {"outer", "inner"})


@pytest.mark.backends("sqlite", reason="SQLite's write lock")
def test_begin_immediate_holds_sqlites_write_lock_from_its_first_read(
    app: Flask, backend: str
) -> None:
    # The row before an update is read under the lock the update then writes under.
    database = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")

    def another_writer_begins() -> str:
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            return str(error)
        finally:
            other.close()
        return "began"

    async def view() -> tuple[str, str]:
        async with transaction(begin="BEGIN IMMEDIATE"):
            await run_db(_stored_here)
            during = await run_db(another_writer_begins)
        return during, await run_db(another_writer_begins)

    assert _in_request(app, view) == ("database is locked", "began")


def _stored_here() -> int:
    return int(db.session.execute(select(func.count()).select_from(User)).scalar_one())


@pytest.mark.postgresql_only("the write conflict is raised by PostgreSQL")
def test_a_conflict_in_a_begun_transaction_is_tried_once_more_in_a_new_one(
    app: Flask, backend: str
) -> None:
    work = _FailsOnce()

    async def view() -> None:
        async with transaction(begin="BEGIN"):
            await run_db(work)

    _in_request(app, view)
    assert work.calls == 2
    with app.app_context():
        # The rollback ended the first BEGIN's transaction; the second try had its own.
        assert set(db.session.execute(select(User.username)).scalars()) == {"try2"}


def test_driver_execute_raises_the_drivers_error_as_sqlalchemys(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as conn, pytest.raises(DBAPIError) as raised:
        driver_execute(conn, "SELECT no_such_column FROM user_account")
    assert raised.value.statement == "SELECT no_such_column FROM user_account"
    assert not isinstance(raised.value.orig, DBAPIError)


@pytest.mark.backends("mysql", reason="only MariaDB's pool skips its rollback after a commit")
def test_the_pool_rolls_back_sql_past_sqlalchemy_after_a_commit(app: Flask) -> None:
    with app.app_context():
        with db.engine.connect() as conn:
            conn.execute(select(User.id)).all()
            conn.commit()
            raw = conn.connection.dbapi_connection
            assert raw is not None
            driver_execute(
                conn, "INSERT INTO user_account (username, email) VALUES ('x', 'x@x.io')"
            )
        with closing(raw.cursor()) as cursor:
            # The pooled connection's transaction, which its next user would have committed.
            cursor.execute("SELECT @@in_transaction")
            assert cursor.fetchone() == (0,)


@pytest.mark.postgresql_only("the write conflict is raised by PostgreSQL")
def test_a_conflict_after_earlier_work_of_the_transaction_is_not_tried_again(
    app: Flask, backend: str
) -> None:
    work = _FailsOnce()

    async def view() -> None:
        async with transaction():
            await run_db(users.create_user, UserCreate(username="before", email="b@x.io"))
            await run_db(work)  # trying only this again would not be the transaction again

    with pytest.raises(DBAPIError):
        _in_request(app, view)
    assert work.calls == 1
    assert _stored(app) == 0


def test_timestamps_read_back_in_utc_itself_on_every_backend(app: Flask, backend: str) -> None:
    # PostgreSQL sessions start in TimeZone=UTC, so psycopg hands back datetime.UTC, which
    # UTCDateTime passes through; elsewhere it attaches or converts to the same object.
    created = make_user(app)
    with app.app_context():
        user = db.session.execute(select(User).where(User.id == created.id)).scalar_one()
        assert user.created_at.tzinfo is UTC
        assert user.updated_at.tzinfo is UTC
        if backend == "postgresql":
            assert db.session.execute(text("SHOW TimeZone")).scalar_one() == "UTC"


def test_timestamps_are_read_without_a_call_each_only_in_a_utc_session(
    app: Flask, backend: str, tmp_path: Path
) -> None:
    # In a UTC session psycopg's values are already what UTCDateTime makes of them, so no
    # result processor runs; behind PgBouncer (no startup options) and elsewhere one does.
    column_type = User.__table__.c.created_at.type
    with app.app_context():
        for engine in db.engines.values():
            processor = column_type._cached_result_processor(engine.dialect, None)
            assert (processor is None) == (backend == "postgresql")
    if backend != "postgresql":
        return
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    behind = create_app(Settings(DATABASE_URL=url, DB_PGBOUNCER=True, INSTANCE_PATH=tmp_path))
    with behind.app_context():
        for engine in db.engines.values():
            assert column_type._cached_result_processor(engine.dialect, None) is not None
            engine.dispose()
