"""One app per backend per run; every test runs on SQLite, PostgreSQL and MariaDB."""

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
from tests.faults.helpers import FIGURES
from tests.helpers import BACKENDS, IN_CI, LiveServer, serving

# The servers the suite creates its databases on; CI fails if either is unreachable.
ADMIN_URLS = {
    "postgresql": os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get(
        "TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    ),
}
_skipped_servers: list[str] = []


def _reachable(backend: str) -> str | None:
    try:
        engine = create_engine(ADMIN_URLS[backend], connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _drop_statement(backend: str, name: str) -> str:
    if backend == "mysql":
        return f"DROP DATABASE IF EXISTS `{name}`"
    return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def create_database(backend: str, name: str) -> str:
    """Make an empty database on the backend's server; return its URL."""
    admin = create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(_drop_statement(backend, name)))
        if backend == "mysql":
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        else:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(ADMIN_URLS[backend]).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_database(backend: str, name: str) -> None:
    """Drop a database create_database made."""
    admin = create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(_drop_statement(backend, name)))
    admin.dispose()


def require_server(backend: str) -> None:
    """Skip where the backend's server does not answer, except in CI where that fails."""
    problem = _reachable(backend)
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {backend} is unreachable at {ADMIN_URLS[backend]}: {problem}")
    pytest.skip(f"{backend} unreachable: {problem}")


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh, empty database of the parametrised backend: (backend, url)."""
    backend: str = request.param
    if backend == "sqlite":
        yield backend, f"sqlite:///{tmp_path / 'empty.db'}"
        return
    require_server(backend)
    name = f"app_empty_{uuid.uuid4().hex[:12]}"
    url = create_database(backend, name)
    try:
        yield backend, url
    finally:
        drop_database(backend, name)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    name: str = request.param
    if name != "sqlite":
        require_server(name)
    return name


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated-on-first-use database for the whole run, one per backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
        return
    name = f"app_test_{os.getpid()}"
    url = create_database(backend, name)
    yield url
    drop_database(backend, name)


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
        # Tests sign the same names in again and again; tests/api/test_sign_in_limits.py
        # sets its own.
        SIGN_IN_LIMIT="",
        SIGN_IN_ADDRESS_LIMIT="",
        # The same for the mails asked for; tests/mail/test_limits.py sets its own.
        MAIL_LIMIT="",
        MAIL_ADDRESS_LIMIT="",
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


_server_tests: set[str] = set()


def _backends(item: pytest.Item) -> set[str]:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return {str(params[key]) for key in ("backend", "empty_database_url") if key in params}


def _allowed(item: pytest.Item) -> set[str]:
    if item.get_closest_marker("postgresql_only") is not None:
        return {"postgresql"}
    only = item.get_closest_marker("backends")
    return set(only.args) if only is not None else set(BACKENDS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the other backends of postgresql_only and backends(...) tests (no phantom
    skips); note which tests run on a database server (by their backend parameter)."""
    elsewhere = [item for item in items if _backends(item) - _allowed(item)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if item not in elsewhere]
    for item in items:
        if _backends(item) & {"postgresql", "mysql"}:
            _server_tests.add(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember PostgreSQL and MariaDB tests that were skipped."""
    if report.skipped and report.nodeid in _server_tests:
        _skipped_servers.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true, a skipped PostgreSQL or MariaDB test fails the run."""
    if IN_CI and _skipped_servers:
        skipped = "\n  ".join(_skipped_servers)
        sys.stderr.write(
            f"\nCI=true: PostgreSQL or MariaDB tests were skipped; failing:\n  {skipped}\n"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fault and cluster tests' figures, whatever the output capture."""
    if FIGURES:
        terminalreporter.section("fault and cluster figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
