"""The connection ceiling: every process of a server together never opens more connections
than DB_MAX_CONNECTIONS, by the pools' sizes; start-up refuses sizes past it, with the sums.

PostgreSQL's default max_connections is 100 and the old pools allowed 51 a process (20 + 20
+ 10 + the LISTEN one) on 2 x CPUs processes: 204 on 2 CPUs, and "too many clients".
"""

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, create_engine, insert, select, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import NullPool

from app import create_app
from app.config import SETTINGS, ConnectionCeiling, Settings, connection_ceiling
from app.db import asyncpg_pool, migrations, notifications
from app.db.session import AUTOCOMMIT, db
from app.models import User
from tests.factories import make_api_key
from tests.faults.helpers import report

POSTGRESQL = "postgresql://app@db.example:5432/app"
MARIADB = "mysql://app@db.example:3306/app"
SIZING = (
    "WEB_CONCURRENCY",
    "WEB_THREADS",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "ASYNCPG_POOL_SIZE",
    "DB_MAX_CONNECTIONS",
    "DATABASE_REPLICA_URL",
    "EXPORTS_PER_PROCESS",
)


@pytest.fixture(autouse=True)
def _no_sizing_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SIZING:
        monkeypatch.delenv(name, raising=False)


def settings_on(url: str | None, **values: object) -> Settings:
    """Settings from these values alone (no .env file)."""
    return Settings.model_validate({"DATABASE_URL": url, **values})


def refusal(url: str, **values: object) -> str:
    """The message start-up refuses these settings with."""
    with pytest.raises(ValidationError) as refused:
        settings_on(url, **values)
    return str(refused.value)


# Each backend's budget, and a process's least at the default 4 threads and exports: each
# SQLAlchemy pool 4 + EXPORTS_PER_PROCESS; on PostgreSQL asyncpg 2 and LISTEN 1.
EXPORTS = int(Settings.model_fields["EXPORTS_PER_PROCESS"].default)
DEFAULTS = {POSTGRESQL: (80, 2 * (4 + EXPORTS) + 2 + 1), MARIADB: (120, 2 * (4 + EXPORTS))}


@pytest.mark.parametrize("cpus", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("url", [POSTGRESQL, MARIADB], ids=["postgresql", "mariadb"])
def test_the_defaults_stay_within_the_budget_on_1_to_16_cpus(
    monkeypatch: pytest.MonkeyPatch, url: str, cpus: int
) -> None:
    # WEB_CONCURRENCY's default is 2 x available_cpus(), looked up when Settings is made.
    monkeypatch.setattr("app.config.paths.available_cpus", lambda: cpus)
    budget, least = DEFAULTS[url]
    settings = settings_on(url)
    # 2 x CPUs while the budget holds them (up to 2 CPUs, at least), then what it holds.
    assert min(2 * cpus, budget // least) == settings.WEB_CONCURRENCY
    assert 2 * cpus == settings.WEB_CONCURRENCY or cpus > 2
    assert settings.WEB_THREADS == 4
    engine = settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW
    # Each SQLAlchemy pool serves every app thread at once, and the transactions pool the
    # exports a process lets its readers stall; asyncpg an import and /readyz beside it.
    assert engine >= settings.WEB_THREADS + settings.EXPORTS_PER_PROCESS
    per_process = 2 * engine
    if url == POSTGRESQL:
        assert settings.ASYNCPG_POOL_SIZE >= 2
        per_process += settings.ASYNCPG_POOL_SIZE + 1
    assert settings.WEB_CONCURRENCY * per_process <= budget
    ceiling = connection_ceiling(settings)
    assert (ceiling.per_process, ceiling.total, ceiling.budget) == (
        per_process,
        settings.WEB_CONCURRENCY * per_process,
        budget,
    )


def test_the_defaults_on_2_cpus_spend_the_budget_and_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.config.paths.available_cpus", lambda: 2)
    ceiling = connection_ceiling(settings_on(POSTGRESQL, EXPORTS_PER_PROCESS=2))
    # 80 // 4 = 20 a process: the least 15 (2 x (4 + 2) + 2 + 1), 1 more to each SQLAlchemy
    # pool, and what they leave (3) to asyncpg.
    assert str(ceiling) == (
        "WEB_CONCURRENCY 4 x (transactions pool [DB_POOL_SIZE 4 + DB_MAX_OVERFLOW 3] 7"
        " + autocommit pool [the same] 7 + asyncpg pool [ASYNCPG_POOL_SIZE] 5 + LISTEN 1"
        " = 20) = 80"
    )


def test_the_old_sizes_are_refused_with_each_term_of_the_sum() -> None:
    message = refusal(
        POSTGRESQL, WEB_CONCURRENCY=4, DB_POOL_SIZE=10, DB_MAX_OVERFLOW=10, ASYNCPG_POOL_SIZE=10
    )
    for term in (
        "WEB_CONCURRENCY 4 x (",
        "transactions pool [DB_POOL_SIZE 10 + DB_MAX_OVERFLOW 10] 20",
        "autocommit pool [the same] 20",
        "asyncpg pool [ASYNCPG_POOL_SIZE] 10",
        "LISTEN 1 = 51) = 204 connections > DB_MAX_CONNECTIONS 80",
        "(its default, of max_connections 100): at 51 a process, 1 fit.",
        "Lower WEB_CONCURRENCY, the pools (DB_POOL_SIZE, DB_MAX_OVERFLOW, ASYNCPG_POOL_SIZE;",
        "a SQLAlchemy pool never below WEB_THREADS + EXPORTS_PER_PROCESS) or those",
        "or raise DB_MAX_CONNECTIONS with max_connections.",
    ):
        assert term in message


def test_too_many_processes_are_refused_even_with_the_pools_at_their_least() -> None:
    message = refusal(POSTGRESQL, WEB_CONCURRENCY=32, EXPORTS_PER_PROCESS=2)
    assert "WEB_CONCURRENCY 32 x (transactions pool [DB_POOL_SIZE 4 + DB_MAX_OVERFLOW 2] 6" in (
        message
    )
    assert "= 15) = 480 connections > DB_MAX_CONNECTIONS 80" in message
    assert "at 15 a process, 5 fit." in message


def test_threads_one_process_cannot_serve_are_refused() -> None:
    message = refusal(POSTGRESQL, WEB_THREADS=40, EXPORTS_PER_PROCESS=2)
    assert "WEB_CONCURRENCY 1 x (" in message
    assert "= 87) = 87 connections > DB_MAX_CONNECTIONS 80" in message
    assert "at 87 a process, 0 fit." in message


def test_mariadb_counts_its_two_pools_against_its_own_budget() -> None:
    message = refusal(MARIADB, WEB_CONCURRENCY=4, DB_POOL_SIZE=10, DB_MAX_OVERFLOW=10)
    assert "autocommit pool [the same] 20 = 40) = 160 connections > DB_MAX_CONNECTIONS 120" in (
        message
    )
    assert "(its default, of max_connections 151)" in message
    assert "asyncpg pool" not in message
    assert "LISTEN" not in message


def test_an_explicit_budget_is_refused_by_its_own_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    # From the environment, as the server reads it; no default's explanation then.
    monkeypatch.setenv("DB_MAX_CONNECTIONS", "30")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("EXPORTS_PER_PROCESS", "2")
    with pytest.raises(ValidationError) as refused:
        Settings(DATABASE_URL=POSTGRESQL, _env_file=None)
    assert "= 15) = 45 connections > DB_MAX_CONNECTIONS 30: at 15 a process, 2 fit." in str(
        refused.value
    )


def test_a_larger_budget_lets_the_sizes_grow_up_to_the_old_ones() -> None:
    settings = settings_on(
        POSTGRESQL, WEB_CONCURRENCY=32, DB_MAX_CONNECTIONS=2000, EXPORTS_PER_PROCESS=2
    )
    assert (settings.DB_POOL_SIZE, settings.DB_MAX_OVERFLOW, settings.ASYNCPG_POOL_SIZE) == (
        4,
        16,
        10,
    )
    assert connection_ceiling(settings).total == 32 * 51


def test_sizes_given_are_kept_and_the_rest_fill_the_share() -> None:
    # As the cluster test sets them: 2 processes, 40 connections each.
    settings = settings_on(
        POSTGRESQL, WEB_CONCURRENCY=2, DB_POOL_SIZE=4, ASYNCPG_POOL_SIZE=2, EXPORTS_PER_PROCESS=2
    )
    assert (settings.DB_POOL_SIZE, settings.ASYNCPG_POOL_SIZE) == (4, 2)
    # 40 - 2 - 1 = 37 for two SQLAlchemy pools: 18 each, at most the old 20.
    assert settings.DB_MAX_OVERFLOW == 14
    assert connection_ceiling(settings).total == 2 * (18 + 18 + 2 + 1)
    # Given, the sizes are not raised for more threads: each request waits for a connection.
    small = settings_on(MARIADB, WEB_CONCURRENCY=2, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0)
    assert connection_ceiling(small).total == 2 * 2


def test_a_replica_is_counted_on_its_own_server() -> None:
    replica = "postgresql://app@replica:5432/app"
    settings = settings_on(
        POSTGRESQL, WEB_CONCURRENCY=4, DATABASE_REPLICA_URL=replica, EXPORTS_PER_PROCESS=2
    )
    ceiling = connection_ceiling(settings)
    # A streaming replica is another server, with its own max_connections (a hot standby's
    # at least the primary's): the replica pool counts there, the same size as autocommit's.
    assert ceiling.per_process == 20
    assert ceiling.replica == settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW == 7
    assert ceiling.replica * ceiling.processes <= 80


def test_sqlite_has_no_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.config.paths.available_cpus", lambda: 16)
    settings = settings_on(None, DB_POOL_SIZE=50, DB_MAX_OVERFLOW=50)
    assert settings.WEB_CONCURRENCY == 32
    assert connection_ceiling(settings) == ConnectionCeiling(32, (), 0, 0, None, 0)


def test_the_server_refuses_to_start_and_says_why() -> None:
    # The master process reads the settings before it forks a worker or binds the port.
    done = subprocess.run(
        [sys.executable, "-m", "app.server"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "WEB_CONCURRENCY": "32",
            "EXPORTS_PER_PROCESS": "2",
        },
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode != 0
    assert "= 480 connections > DB_MAX_CONNECTIONS 80" in done.stderr
    assert "at 15 a process, 5 fit." in done.stderr


# The live count: a process of this app never holds more than its ceiling, under load or
# with every pool drained. 4 processes of 2 threads on a budget of 44: 11 a process.
LIVE = {
    "WEB_CONCURRENCY": 4,
    "WEB_THREADS": 2,
    "DB_MAX_CONNECTIONS": 44,
    "EXPORTS_PER_PROCESS": 2,
    "DB_POOL_TIMEOUT": 1.0,
    "RATE_LIMIT": "",
}
COUNT = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    "mysql": "SELECT count(*) FROM information_schema.PROCESSLIST "
    "WHERE DB = DATABASE() AND ID <> CONNECTION_ID()",
}


class Sampler:
    """Counts the database's connections (but its own) every 2 ms on a thread; keeps the peak."""

    def __init__(self, url: str, backend: str) -> None:
        # No pool: a connection of its own kept idle would be counted.
        self._engine = create_engine(url, poolclass=NullPool)
        self._query = text(COUNT[backend])
        self._stop = threading.Event()
        self.peak = 0
        self.samples = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        """The connections open now, but the sampler's."""
        with self._engine.connect() as connection:
            return int(connection.execute(self._query).scalar_one())

    def _run(self) -> None:
        with self._engine.connect() as connection:
            while not self._stop.is_set():
                count = int(connection.execute(self._query).scalar_one())
                connection.rollback()  # a fresh snapshot of the activity each time
                self.peak, self.samples = max(self.peak, count), self.samples + 1
                time.sleep(0.002)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._engine.dispose()


@pytest.fixture
def live_app(empty_database_url: tuple[str, str], tmp_path: Path) -> Iterator[Flask]:
    """The app sized by LIVE on a fresh database, its LISTEN connection open (PostgreSQL)."""
    backend, url = empty_database_url
    settings = settings_on(url, INSTANCE_PATH=tmp_path, **LIVE)
    app = create_app(settings)
    app.config["TESTING"] = True
    with app.app_context():
        migrations.migrate(db.engine)
        db.engine.dispose()  # the migration's connection: counted from none
    listener = None
    if backend == "postgresql":
        # What create_app(serving=True) starts, but cancellable: the database is dropped after.
        heard = threading.Event()
        dsn = asyncpg_pool.dsn(settings.database_url)
        listener = asyncpg_pool.submit(
            notifications._listen(dsn, "test_ceiling", 3, lambda _: None, heard.set)
        )
        assert heard.wait(10), "the listener never connected"
    try:
        yield app
    finally:
        if listener is not None:
            listener.cancel()
        with app.app_context():
            if backend == "postgresql":
                asyncpg_pool.run_blocking(asyncpg_pool.current_pool().close())
            for engine in db.engines.values():
                engine.dispose()


def _drain(engine: Engine, count: int) -> list[Connection]:
    return [engine.connect() for _ in range(count)]


def _requests(app: Flask, token: str, n: int, user: int, statuses: list[int]) -> None:
    # One client thread: writes and reads on the autocommit pool, posts on the transactions
    # pool (a transaction), readiness on asyncpg (PostgreSQL) or the autocommit pool.
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    for i in range(50):
        name = f"load{n}x{i}"
        kind = i % 5
        if kind == 0:
            response = client.post("/users", json={"username": name, "email": f"{name}@a.example"})
        elif kind == 1:
            response = client.get("/users?limit=5")
        elif kind == 2:
            response = client.get("/readyz")
        elif kind == 3:
            response = client.post(f"/users/{user}/posts", json={"title": "t", "body": "b"})
        else:
            response = client.get(f"/users/{user}")
        statuses.append(response.status_code)


@pytest.mark.parametrize("empty_database_url", ["postgresql", "mysql"], indirect=True)
def test_a_process_never_opens_more_than_its_ceiling(
    live_app: Flask, empty_database_url: tuple[str, str]
) -> None:
    backend, url = empty_database_url
    settings: Settings = live_app.extensions[SETTINGS]
    ceiling = connection_ceiling(settings)
    per_pool = settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW
    # 44 // 4 = 11: PostgreSQL 2 x (2 threads + 2 exports) + asyncpg 2 + LISTEN 1; MariaDB
    # 2 x 5 (its least 4, and 3 more: 1 to each pool).
    assert ceiling.per_process == {"postgresql": 11, "mysql": 10}[backend]
    sampler = Sampler(url, backend)
    with live_app.app_context():
        # Every pool drained: the count is the ceiling, and one more of each is refused.
        held = _drain(db.engines[None], per_pool) + _drain(db.engines[AUTOCOMMIT], per_pool)
        pool = asyncpg_pool.current_pool() if backend == "postgresql" else None
        taken = [] if pool is None else [
            asyncpg_pool.run_blocking(pool.acquire()) for _ in range(settings.ASYNCPG_POOL_SIZE)
        ]  # fmt: skip
        try:
            assert sampler.now() == ceiling.per_process
            for engine in (db.engines[None], db.engines[AUTOCOMMIT]):
                with pytest.raises(PoolTimeoutError):
                    engine.connect()
            if pool is not None:
                assert asyncpg_pool.run_blocking(pool.acquire_spare()) is None
                with pytest.raises(TimeoutError):
                    asyncpg_pool.run_blocking(pool.acquire())
            assert sampler.now() == ceiling.per_process
        finally:
            for connection in held:
                connection.close()
            if pool is not None:
                for proxy in taken:
                    asyncpg_pool.run_blocking(pool.release(proxy))
        # The users the posts below are written for.
        rows = [{"username": f"user{i}", "email": f"user{i}@b.example"} for i in range(8)]
        db.session.execute(insert(User), rows)
        db.session.commit()
        users = list(db.session.scalars(select(User.id).order_by(User.id)))
        db.session.remove()
        # Under load: 8 client threads x 50 requests, beside a transaction left open, as an
        # export's whose reader stalled (a connection of the transactions pool, no thread).
        stalled = db.engines[None].connect()
        stalled.execute(select(User.id).limit(1)).all()

    token = make_api_key(live_app)
    statuses: list[int] = []
    with sampler:
        workers = [
            threading.Thread(target=_requests, args=(live_app, token, n, users[n], statuses))
            for n in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
    stalled.close()
    assert len(statuses) == 400
    assert not [status for status in statuses if status >= 500]
    figures: dict[str, object] = {"ceiling": ceiling.per_process, "peak": sampler.peak}
    figures["samples"] = sampler.samples
    report(f"connection ceiling under load ({backend})", figures)
    assert sampler.samples > 0
    assert 1 <= sampler.peak <= ceiling.per_process
