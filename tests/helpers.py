"""Helpers shared by test modules: problems, users to import, engines, empty databases,
server processes and other checkouts of the project.

Fixtures live in the conftest.py files; typed factories in tests/factories.py.
"""

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.pool import QueuePool
from werkzeug.test import TestResponse

from app import create_app
from app.config import SETTINGS, Settings
from app.db import user_search
from app.db.session import db
from app.models import User
from app.server.bridge import WSGIBridge
from app.server.types import Message

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", "postgresql", "mysql"]

# A fresh, empty database of each backend, as the ``empty_database_url`` fixture's parameter.
with_empty_database = pytest.mark.parametrize("empty_database_url", BACKENDS, indirect=True)


def assert_problem(response: TestResponse, status: int) -> dict[str, object]:
    """Check the response is an RFC 9457 problem with the status and return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert "X-Request-ID" in response.headers
    return dict(body)


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    """Return the rows as an NDJSON file, one JSON object a line."""
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def user_rows(n: int, prefix: str = "bulk") -> list[dict[str, Any]]:
    """Return n distinct users to import, named prefix0, prefix1, ..."""
    return [{"username": f"{prefix}{i}", "email": f"{prefix}{i}@example.com"} for i in range(n)]


def stored_users(app: Flask) -> list[tuple[str, str]]:
    """Return every stored user's (username, email), in id order."""
    with app.app_context():
        rows = db.session.execute(select(User.username, User.email).order_by(User.id))
        return [(u, e) for u, e in rows]


def delete_users(app: Flask) -> None:
    """Delete every user (and commit)."""
    with app.app_context():
        db.session.execute(delete(User))
        db.session.commit()


def engines(app: Flask) -> list[Engine]:
    """Every engine the app's session can send statements to."""
    with app.app_context():
        return list(db.engines.values())


@contextmanager
def listening(app: Flask, identifier: str, fn: Callable[..., Any]) -> Iterator[None]:
    """Attach an engine event listener to every engine of the app while the block runs."""
    watched = engines(app)
    for engine in watched:
        event.listen(engine, identifier, fn)
    try:
        yield
    finally:
        for engine in watched:
            event.remove(engine, identifier, fn)


@contextmanager
def counting_statements(app: Flask) -> Iterator[list[str]]:
    """Collect every SQL statement sent while the block runs."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with listening(app, "before_cursor_execute", record):
        yield statements


def assert_nothing_checked_out(app: Flask) -> None:
    """Fail if any engine of the app has a connection out of its pool."""
    for engine in engines(app):
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.checkedout() == 0, engine


@contextmanager
def failing_statements(app: Flask, marker: str) -> Iterator[None]:
    """Make the driver itself fail every statement that contains ``marker``."""
    dbapi_error = engines(app)[0].dialect.loaded_dbapi.OperationalError

    def do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> None:
        if marker in statement:
            raise dbapi_error("forced failure for a test")

    with listening(app, "do_execute", do_execute):
        yield


def free_port() -> int:
    """Return a TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(port: int, workers: int = 2, threads: int = 8) -> dict[str, str]:
    """The environment that makes ``python -m app.server`` (the shipped server) serve here."""
    return {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
        "GRACEFUL_TIMEOUT": "5",
        # Load and suites send far more than a key's default budget; tests of the limit
        # set their own.
        "RATE_LIMIT": "",
    }


def wait_until_serving(base_url: str, process: "subprocess.Popen[bytes]", log: Path) -> None:
    """Wait (30 s at most) until the server answers /healthz; fail with its log if it dies."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def stop(process: "subprocess.Popen[bytes]") -> None:
    """Stop a server this test started: SIGTERM, then SIGKILL after 15 s; by its pid only."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass(frozen=True)
class LiveServer:
    """A server process serving the app: its base URL and its combined log."""

    url: str
    log_path: Path

    def log(self) -> str:
        """Return the end of the server's log (access and error lines)."""
        return self.log_path.read_text(errors="replace")[-20_000:]


def doc_block(page: str, heading: str, language: str) -> str:
    """The first ``language`` code block in section ``heading`` (its ## line) of ``page``,
    a path from the repository's root (README.md, docs/...)."""
    text = (Path(__file__).resolve().parents[1] / page).read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"{page}'s section {heading!r} has no {language} block"
    return match.group(1)


ROOT = Path(__file__).resolve().parents[1]


def project_copy(folder: Path) -> Path:
    """Make ``folder`` another checkout of this project (its app, migrations inside, and
    alembic.ini are symlinks to this one's), with an instance folder and .env of its own."""
    folder.mkdir(parents=True)
    for name in ("app", "alembic.ini"):
        (folder / name).symlink_to(ROOT / name, target_is_directory=(ROOT / name).is_dir())
    return folder


def embedded_env(project: Path | None = None) -> dict[str, str]:
    """The environment without any setting or Flask override (the README's defaults); with
    ``project``, the app package imported is that checkout's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in Settings.model_fields and not key.startswith("FLASK_")
    }
    if project is not None:
        env["PYTHONPATH"] = str(project)
    return env


@contextmanager
def serving(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, **env: str
) -> Iterator[LiveServer]:
    """The shipped server (python -m app.server) on a free loopback port, with ``env`` on
    top of the test settings; stopped, by its pid, on exit."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ASYNC_DEBUG": "true",
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("live-instance")),
        **server_env(port),
        **env,
    }
    command = [sys.executable, "-m", "app.server"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base_url, process, log_path)
        yield LiveServer(base_url, log_path)
    finally:
        stop(process)


@contextmanager
def app_with(app: Flask, **overrides: Any) -> Iterator[Flask]:
    """Another app on ``app``'s database with some settings changed; its engines closed on
    exit."""
    other = create_app(app.extensions[SETTINGS].model_copy(update=overrides))
    other.config["TESTING"] = True
    try:
        yield other
    finally:
        with other.app_context():
            for engine in db.engines.values():
                engine.dispose()


# The bridge, driven in process (tests/server).
def asgi_scope(
    method: str = "POST", path: str = "/users", headers: dict[str, str] | None = None
) -> Any:
    """An ASGI http scope from 127.0.0.1 to the bridge."""
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


class Recorder:
    """A WSGI app that records what it was called with."""

    def __init__(self, body: Iterable[bytes] = (b"ok",), gate: threading.Event | None = None):
        self.calls: list[bytes] = []
        self._body = body
        self._gate = gate

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if self._gate is not None:
            self._gate.wait(10)
        self.calls.append(environ["wsgi.input"].read())
        start("200 OK", [("Content-Type", "text/plain")])
        return self._body


async def serve_asgi(
    bridge: WSGIBridge, scope: Any, messages: list[Message], stall: bool = False
) -> list[Message]:
    """Run one exchange through the bridge; return what it sent (``stall``: the client
    then sends nothing more)."""
    sent: list[Message] = []
    incoming = iter(messages)

    async def receive() -> Message:
        try:
            return next(incoming)
        except StopIteration:
            if stall:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await bridge(scope, receive, send)
    return sent


def asgi_status(sent: list[Message]) -> int:
    """The status the bridge sent."""
    return int(sent[0]["status"])


def asgi_body(sent: list[Message]) -> bytes:
    """The body the bridge sent."""
    return b"".join(m.get("body", b"") for m in sent[1:])


def lookup_plan(app: Flask, statement: str, parameters: Any) -> str:
    """PostgreSQL's plan for a statement a test captured, with table scans and index walks in
    order turned off: a handful of rows is cheaper to scan or walk than to look up, so what is
    left shows whether an index can answer the condition itself."""
    with app.app_context(), db.engine.connect() as connection:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(row[0] for row in rows)


def index_plan(app: Flask, backend: str, statement: str, parameters: Any) -> str:
    """The plan of a statement a test captured, on any backend: PostgreSQL's as lookup_plan
    gives it; MariaDB's EXPLAIN rows (access type and key, one line a table);
    and SQLite's EXPLAIN QUERY PLAN details."""
    if backend == "postgresql":
        return lookup_plan(app, statement, parameters)
    with app.app_context(), db.engine.connect() as connection:
        if backend == "mysql":
            explained = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            return "\n".join(f"{row['type']} {row['key']}" for row in explained.mappings())
        explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in explained)


def require_search_side_table(engine: Engine) -> None:
    """Skip where MariaDB has no Mroonga (no side table: app.db.user_search); under CI fail,
    since .ci/run installs it."""
    if not user_search.ready(engine):
        message = "MariaDB without Mroonga: .ci/run installs mariadb-plugin-mroonga"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
