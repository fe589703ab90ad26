"""Request work has a deadline: a lock wait or a server that stops answering is a fast 503."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Settings
from app.db import deadlines
from app.db.engines import engine_options
from app.db.session import db
from tests.factories import make_api_key, make_user
from tests.helpers import assert_problem


def _settings(url: str = "postgresql://db/app", **fields: object) -> Settings:
    """Settings with the deadlines given here, whatever this run's environment says."""
    given: dict[str, object] = {
        "DATABASE_URL": url,
        "DB_STATEMENT_TIMEOUT": 5.0,
        "DB_LOCK_TIMEOUT": 1.5,
        "DB_IDLE_IN_TRANSACTION_TIMEOUT": 10.0,
        "DB_BULK_TIMEOUT": 600.0,
        "DB_PGBOUNCER": False,
        **fields,
    }
    return Settings.model_validate(given)


def test_bulk_work_gets_the_bulk_deadline_but_the_same_lock_wait() -> None:
    settings = _settings()
    assert deadlines.for_work(settings) == (5.0, 1.5, 10.0)
    assert deadlines.for_work(settings, bulk=True) == (600.0, 1.5, 600.0)
    assert deadlines.client_deadline(settings) == 6.0


def test_postgresql_is_told_milliseconds_at_connect_and_per_bulk_transaction() -> None:
    settings = _settings()
    request = {
        "statement_timeout": "5000",
        "lock_timeout": "1500",
        "idle_in_transaction_session_timeout": "10000",
    }
    assert deadlines.postgresql_startup(settings) == request
    assert engine_options(settings)["connect_args"]["options"] == (
        "-c statement_timeout=5000 -c lock_timeout=1500"
        " -c idle_in_transaction_session_timeout=10000 -c TimeZone=UTC"
    )
    assert deadlines.set_local(settings, bulk=True) == (
        "SET LOCAL statement_timeout = 600000; SET LOCAL lock_timeout = 1500; "
        "SET LOCAL idle_in_transaction_session_timeout = 600000"
    )


def test_behind_pgbouncer_no_startup_setting_is_sent_and_nothing_is_prepared() -> None:
    settings = _settings(DB_PGBOUNCER=True)
    assert deadlines.postgresql_startup(settings) == {}
    connect_args = engine_options(settings)["connect_args"]
    assert "options" not in connect_args
    assert connect_args["prepare_threshold"] is None
    # SET LOCAL is a statement, not a startup setting: bulk work still gets its deadlines.
    assert deadlines.set_local(settings, bulk=True).startswith("SET LOCAL statement_timeout")


def test_mariadb_rounds_lock_and_idle_waits_up_and_bounds_every_socket_call() -> None:
    settings = _settings("mysql://db/app", DB_STATEMENT_TIMEOUT=0.5)
    connect_args = engine_options(settings)["connect_args"]
    assert connect_args["init_command"] == (
        "SET SESSION max_statement_time = 0.5, innodb_lock_wait_timeout = 2,"
        " lock_wait_timeout = 2, idle_transaction_timeout = 10, time_zone = '+00:00'"
    )
    # The watchdog's deadline (0.5 s + 1 s) first, then PyMySQL's own, a second later.
    assert connect_args["read_timeout"] == connect_args["write_timeout"] == 2.5
    assert deadlines.mysql_session(settings, bulk=True).startswith(
        "SET SESSION max_statement_time = 600, innodb_lock_wait_timeout = 2,"
    )


class FreezableProxy:
    """A loopback TCP relay to PostgreSQL that can stop relaying, like a frozen server.

    While frozen it still accepts and keeps every connection, as a SIGSTOPped server's
    kernel does, but passes nothing on: no reset, no answer.
    """

    def __init__(self, port: int) -> None:
        self._target = ("127.0.0.1", port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.frozen = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(a, b), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.frozen.is_set():
                    time.sleep(0.02)
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting and drop every relayed connection."""
        self.frozen.clear()
        self._listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def frozen_app(
    backend: str, database_url: str, app: Flask, tmp_path: Path
) -> Iterator[tuple[Flask, FreezableProxy]]:
    """An app on the database through a freezable relay, with a 1 s statement timeout."""
    url = make_url(database_url)
    proxy = FreezableProxy(url.port or {"postgresql": 5432, "mysql": 3306}[backend])
    settings = Settings(
        DATABASE_URL=url.set(port=proxy.port).render_as_string(hide_password=False),
        INSTANCE_PATH=tmp_path,
        DB_STATEMENT_TIMEOUT=1.0,
        ASYNC_DEBUG=True,
    )
    frozen = create_app(settings)
    frozen.config["TESTING"] = True
    try:
        yield frozen, proxy
    finally:
        proxy.close()
        with frozen.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.mark.backends("postgresql", "mysql", reason="a server that stops answering")
def test_a_server_that_stops_answering_is_a_503_within_the_deadline(
    frozen_app: tuple[Flask, FreezableProxy],
) -> None:
    app, proxy = frozen_app
    user = make_user(app)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(app)}"
    assert client.get(f"/users/{user.id}").status_code == 200
    fired = deadlines.watchdog.fired
    proxy.frozen.set()
    for path in (f"/users/{user.id}", "/readyz"):
        started = time.monotonic()
        response = client.get(path)
        took = time.monotonic() - started
        assert_problem(response, 503)
        assert response.headers["Retry-After"] == "1"
        # The client deadline is the 1 s statement timeout plus 1 s, checked every 0.2 s.
        assert took < 3.5, (path, took)
    assert deadlines.watchdog.fired > fired  # the driver's call was cut by the watchdog
    proxy.frozen.clear()
    assert client.get(f"/users/{user.id}").status_code == 200  # new connections, at once


_TABLE_LOCKS = {
    "postgresql": ("LOCK TABLE user_account IN ACCESS EXCLUSIVE MODE", "ROLLBACK"),
    "mysql": ("LOCK TABLES user_account WRITE", "UNLOCK TABLES"),
}


@pytest.mark.backends("postgresql", "mysql", reason="SQLite has no lock timeout but its busy one")
def test_a_held_table_lock_is_a_503_after_the_lock_timeout(
    app: Flask, client: FlaskClient, backend: str, database_url: str
) -> None:
    user = make_user(app)
    lock, unlock = _TABLE_LOCKS[backend]
    holder = create_engine(database_url)
    with holder.connect() as conn:
        conn.execute(text(lock))
        started = time.monotonic()
        response = client.get(f"/users/{user.id}")
        took = time.monotonic() - started
        conn.execute(text(unlock))
    holder.dispose()
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "1"
    lock_timeout = app.extensions["settings"].DB_LOCK_TIMEOUT
    assert lock_timeout <= took < lock_timeout + 2, took
    assert client.get(f"/users/{user.id}").status_code == 200
