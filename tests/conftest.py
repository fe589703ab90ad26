"""One app per backend per run; every test runs on SQLite and on PostgreSQL."""

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Settings
from app.db import migrations
from app.db.session import db
from tests.factories import make_api_key
from tests.helpers import BACKENDS, IN_CI, LiveServer, serving

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_skipped_postgres: list[str] = []


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _create_postgres_database(name: str) -> str:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(name: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Skip PostgreSQL tests where no server answers, except in CI where that is a failure."""
    problem = _postgres_reachable()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {problem}")
    pytest.skip(f"PostgreSQL unreachable: {problem}")


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh, empty database of the parametrised backend: (backend, url)."""
    backend: str = request.param
    if backend == "sqlite":
        yield backend, f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_available")
    name = f"app_empty_{uuid.uuid4().hex[:12]}"
    url = _create_postgres_database(name)
    try:
        yield backend, url
    finally:
        _drop_postgres_database(name)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    name: str = request.param
    if name == "postgresql":
        request.getfixturevalue("postgres_available")
    return name


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated-on-first-use database for the whole run, one per backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
        return
    name = f"app_test_{os.getpid()}"
    url = _create_postgres_database(name)
    yield url
    _drop_postgres_database(name)


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The application on this backend, its schema made by Alembic (as the release step
    does: building an app never migrates)."""
    settings = Settings(
        DATABASE_URL=database_url,
        ASYNC_DEBUG=True,
        INSTANCE_PATH=tmp_path_factory.mktemp("instance"),
        # The suite sends far more than a key's default budget; tests/test_limits.py sets
        # its own limits.
        RATE_LIMIT="",
    )
    application = create_app(settings)
    application.config["TESTING"] = True
    with application.app_context():
        migrations.migrate(db.engine)
    yield application
    with application.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    # Real commits and real constraint errors are under test, so no outer-transaction
    # trick: tests commit like production, and the tables are emptied afterwards.
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def api_token(app: Flask) -> str:
    """A fresh API key with every scope."""
    return make_api_key(app)


@pytest.fixture
def auth_headers(api_token: str) -> dict[str, str]:
    """Headers that authenticate with every scope."""
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def client(app: Flask, api_token: str) -> FlaskClient:
    """A test client of the app that sends a key with every scope."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_token}"
    return test_client


@pytest.fixture
def anonymous_client(app: Flask) -> FlaskClient:
    """A test client that sends no credentials."""
    return app.test_client()


@pytest.fixture(scope="module")
def live_server(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The shipped server (granian and its bridge) on loopback, on this backend's database."""
    with serving(database_url, tmp_path_factory) as server:
        yield server


_postgres_tests: set[str] = set()


def _backends(item: pytest.Item) -> set[str]:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return {str(params[key]) for key in ("backend", "empty_database_url") if key in params}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the SQLite half of postgresql_only tests (no phantom skips); note which
    tests run on PostgreSQL (by their backend parameter, not their name)."""
    sqlite_half = [
        item
        for item in items
        if item.get_closest_marker("postgresql_only") is not None and "sqlite" in _backends(item)
    ]
    if sqlite_half:
        config.hook.pytest_deselected(items=sqlite_half)
        items[:] = [item for item in items if item not in sqlite_half]
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgresql" in (params.get("backend"), params.get("empty_database_url")):
            _postgres_tests.add(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember PostgreSQL tests that were skipped."""
    if report.skipped and report.nodeid in _postgres_tests:
        _skipped_postgres.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true, a skipped PostgreSQL test fails the run."""
    if IN_CI and _skipped_postgres:
        skipped = "\n  ".join(_skipped_postgres)
        sys.stderr.write(f"\nCI=true: PostgreSQL tests were skipped; failing:\n  {skipped}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
