"""What the shipped server says as it starts, at its default sizing: one format, no warning,
no library set-up noise, and the lines an operator needs first (never a credential)."""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import create_database, drop_database, require_server
from tests.helpers import free_port, stop, wait_until_serving

pytestmark = pytest.mark.live

# Our text format (app.telemetry.logs.LOG_FORMAT): every line of a text-mode start is one.
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \[[^\]]*\] [\w.]+: ")
# The local key's banner is written to stderr as it is, in text mode only (app.factory).
KEY_BANNER = ("  Created a local API key", "    umk_", "  Try: curl", "  More keys: ", "  An admin")
SECRET = "s3cret-not-for-logs"


def _start_and_stop(env: dict[str, str], tmp_path: Path) -> list[str]:
    port = free_port()
    log_path = tmp_path / "server.log"
    environ = {k: v for k, v in os.environ.items() if k not in {"WEB_CONCURRENCY", "LOG_FORMAT"}}
    environ.update(env, HOST="127.0.0.1", PORT=str(port), GRACEFUL_TIMEOUT="5")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.server"], env=environ, stdout=log, stderr=log, cwd=tmp_path
        )
        try:
            wait_until_serving(f"http://127.0.0.1:{port}", process, log_path)
            _wait_for_every_worker(log_path)
        finally:
            stop(process)
    # The start-up: up to granian's "Shutting down" (a stop has lines of its own).
    return log_path.read_text().split("Shutting down granian")[0].splitlines()[:-1]


def _wait_for_every_worker(log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log_path.read_text()
        processes = re.search(r"with (\d+) processes", text)
        if processes and text.count("Started worker-") >= int(processes.group(1)):
            return
        time.sleep(0.2)
    pytest.fail(f"not every worker started:\n{log_path.read_text()}")


def _assert_quiet(lines: list[str], messages: list[str]) -> None:
    text = "\n".join(lines)
    assert "WARNING" not in text
    assert "setup plugin" not in text
    assert "Context impl" not in text
    assert "Traceback" not in text
    assert SECRET not in text
    first = messages[:4]
    assert first[0].startswith("serving http://127.0.0.1:")
    assert re.search(r"with \d+ processes x 4 threads on \d+ CPUs", first[0])
    assert first[1].startswith("database: ")
    assert first[2].startswith("database connections")
    assert first[3].startswith("API keys: ")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_server("postgresql")
    name = f"app_startup_{uuid.uuid4().hex[:10]}"
    url = create_database("postgresql", name)
    try:
        # With a password in it (trust auth ignores it): the log must never show it.
        yield make_url(url).set(password=SECRET).render_as_string(hide_password=False)
    finally:
        drop_database("postgresql", name)


def test_embedded_start_in_text_is_one_format_and_says_what_it_serves(tmp_path: Path) -> None:
    lines = _start_and_stop({"INSTANCE_PATH": str(tmp_path / "instance")}, tmp_path)

    ours = [line for line in lines if TEXT_LINE.match(line)]
    others = [line for line in lines if line not in ours]
    assert [line for line in others if line and not line.startswith(KEY_BANNER)] == []
    assert any(line.startswith("    umk_") for line in others)
    messages = [TEXT_LINE.sub("", line) for line in ours]
    _assert_quiet(lines, messages)
    assert messages[1] == f"database: sqlite (embedded) {tmp_path / 'instance' / 'app.db'}"
    assert messages[2] == "database connections: no ceiling (SQLite, a file)"
    assert "the first start makes a local one" in messages[3]
    # Said once, by the worker that migrated, not by each of the others.
    assert sum("database schema migrated" in m for m in messages) == 1


def test_postgresql_start_in_json_names_the_database_and_its_ceiling(
    postgres_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": postgres_url, "LOG_FORMAT": "json", "AUTO_MIGRATE": "true"}
    lines = _start_and_stop(env, tmp_path)

    records = [json.loads(line) for line in lines]  # every line one JSON object
    messages = [record["message"] for record in records]
    _assert_quiet(lines, messages)
    url = make_url(postgres_url)
    assert messages[1] == f"database: postgresql postgres@{url.host}:{url.port}/{url.database}"
    assert re.fullmatch(
        r"database connections at most: WEB_CONCURRENCY \d+ x .* of 80 .*", messages[2]
    )
    # Migrated by the first worker after the master looked: no schema then.
    assert messages[3] == "API keys: the database has no schema yet (alembic upgrade head)"
