"""Which database failures are outages (503), write conflicts (409) or faults of ours (500)."""

import asyncio
import logging
import threading
from typing import Any

import asyncpg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from app.db import asyncpg_pool as pg
from app.db.failures import database_error_kind
from tests.factories import make_user
from tests.helpers import assert_problem, failing_statements


def _sqlalchemy_error(url: str, sql: str) -> DBAPIError:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    except DBAPIError as error:
        return error
    finally:
        engine.dispose()
    pytest.fail(f"no error from {sql}")


async def _asyncpg_error(url: str, sql: str) -> Exception:
    conn = await asyncpg.connect(pg.dsn(url))
    try:
        async with conn.transaction():
            await conn.execute(sql)
    except asyncpg.PostgresError as error:
        return error
    finally:
        await conn.close()
    pytest.fail(f"no error from {sql}")


TIMED_OUT = "SET LOCAL statement_timeout = 50; SELECT pg_sleep(2)"
LOCK_TIMED_OUT = "SET LOCAL lock_timeout = 50; LOCK TABLE user_account IN ACCESS EXCLUSIVE MODE"
FAULT = "SELECT 1 / 0"


# Locks on two keys (:k) that a transaction holds to its end: advisory locks on PostgreSQL,
# two users' rows on MariaDB.
ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(:k)"
ROW_LOCK = "UPDATE user_account SET version = version WHERE id = :k"


def _deadlock_errors(
    url: str, lock: str = ADVISORY_LOCK, keys: tuple[int, int] = (1, 2)
) -> list[DBAPIError]:
    # Two transactions take the two locks in opposite order: the database ends one.
    engine = create_engine(url)
    errors: list[DBAPIError] = []
    barrier = threading.Barrier(2)

    def take(first: int, second: int) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(text(lock), {"k": first})
                barrier.wait(timeout=10)
                conn.execute(text(lock), {"k": second})
        except DBAPIError as error:
            errors.append(error)

    first, second = keys
    pairs = ((first, second), (second, first))
    threads = [threading.Thread(target=take, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    engine.dispose()
    return errors


@pytest.mark.postgresql_only("SQLSTATEs are PostgreSQL's")
def test_real_postgresql_errors_are_told_apart_on_both_drivers(
    app: Flask, backend: str, database_url: str
) -> None:
    holder = create_engine(database_url)
    with holder.connect() as held:
        held.execute(text("LOCK TABLE user_account IN ACCESS SHARE MODE"))
        assert database_error_kind(_sqlalchemy_error(database_url, LOCK_TIMED_OUT)) == "unavailable"
        lock_error = asyncio.run(_asyncpg_error(database_url, LOCK_TIMED_OUT))
        assert database_error_kind(lock_error) == "unavailable"
        held.rollback()
    holder.dispose()
    assert database_error_kind(_sqlalchemy_error(database_url, TIMED_OUT)) == "unavailable"
    assert database_error_kind(asyncio.run(_asyncpg_error(database_url, TIMED_OUT))) == (
        "unavailable"
    )
    assert database_error_kind(_sqlalchemy_error(database_url, FAULT)) == "fault"
    assert database_error_kind(asyncio.run(_asyncpg_error(database_url, FAULT))) == "fault"
    (deadlock,) = _deadlock_errors(database_url)
    assert database_error_kind(deadlock) == "conflict"
    refused = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    with pytest.raises(DBAPIError) as lost:
        refused.connect()
    assert database_error_kind(lost.value) == "unavailable"


@pytest.mark.backends("mysql", reason="MariaDB's error numbers")
def test_real_mariadb_errors_are_told_apart(app: Flask, backend: str, database_url: str) -> None:
    one, two = make_user(app), make_user(app)
    holder = create_engine(database_url)
    with holder.connect() as held:
        held.execute(text("SELECT id FROM user_account WHERE id = :id FOR UPDATE"), {"id": one.id})
        waited = _sqlalchemy_error(
            database_url,
            "SET STATEMENT innodb_lock_wait_timeout = 1 FOR"
            f" UPDATE user_account SET version = version WHERE id = {one.id}",
        )
        held.rollback()
    holder.dispose()
    assert waited.orig.args[0] == 1205  # type: ignore[union-attr]
    assert database_error_kind(waited) == "unavailable"
    slow = _sqlalchemy_error(
        database_url, "SET STATEMENT max_statement_time = 0.05 FOR SELECT SLEEP(2)"
    )
    assert slow.orig.args[0] == 1969  # type: ignore[union-attr]
    assert database_error_kind(slow) == "unavailable"
    assert database_error_kind(_sqlalchemy_error(database_url, "SELECT * FROM no_such")) == "fault"
    (deadlock,) = _deadlock_errors(database_url, ROW_LOCK, (one.id, two.id))
    assert deadlock.orig.args[0] == 1213  # type: ignore[union-attr]
    assert database_error_kind(deadlock) == "conflict"
    refused = create_engine(
        "mysql+pymysql://root@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    with pytest.raises(DBAPIError) as lost:
        refused.connect()
    assert database_error_kind(lost.value) == "unavailable"


def test_sqlite_locked_database_is_unavailable(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    writer = create_engine(url, connect_args={"timeout": 0.05})
    with writer.connect() as conn:
        conn.execute(text("CREATE TABLE t (x int)"))
        conn.commit()
        conn.execute(text("BEGIN EXCLUSIVE"))
        error = _sqlalchemy_error(url, "INSERT INTO t VALUES (1)")
        conn.rollback()
    writer.dispose()
    assert database_error_kind(error) == "unavailable"


def test_an_outage_is_503_with_retry_after_and_one_log_line(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    user = make_user(app)
    with caplog.at_level(logging.ERROR), failing_statements(app, "FROM user_account"):
        response = client.get(f"/users/{user.id}")
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "1"
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert "forced failure" in record.getMessage()  # the cause, for the operator
    assert response.headers["X-Request-ID"] == record.request_id  # type: ignore[attr-defined]


@pytest.mark.postgresql_only("the deadlock comes from PostgreSQL")
def test_a_deadlock_on_a_write_is_tried_again_then_409(
    app: Flask, client: FlaskClient, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deadlock = _deadlock_errors(app.config["SQLALCHEMY_DATABASE_URI"])[0]
    calls: list[int] = []

    def fail(*_: Any, **__: Any) -> Any:
        calls.append(1)
        raise deadlock

    monkeypatch.setattr("app.services.users.create_user", fail)
    response = client.post("/users", json={"username": "dl", "email": "dl@example.com"})
    assert "conflicted" in str(assert_problem(response, 409)["detail"])
    assert len(calls) == 2  # once, then once more
