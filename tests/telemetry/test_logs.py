"""Log lines: text by default, one JSON object a line with LOG_FORMAT=json from the app, the
shipped server (granian's own lines and the access log) and alembic."""

import json
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.telemetry.logs import JsonFormatter, TextFormatter
from tests.helpers import (
    ROOT,
    embedded_env,
    free_port,
    server_env,
    serving,
    with_empty_database,
)

FIELDS = {"time", "level", "logger", "message", "request_id", "api_key"}
HEX_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def _record(message: str, **attributes: Any) -> logging.LogRecord:
    record = logging.LogRecord("app.test", logging.ERROR, __file__, 1, message, (), None)
    record.__dict__.update(attributes)
    return record


def _json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of the output as a JSON object; fail naming the first line that is not."""
    lines = []
    for line in output.splitlines():
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}\nin:\n{output}")
        assert isinstance(parsed, dict), line
        lines.append(parsed)
    return lines


def _records(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The log records among the lines (the console exporter's spans are the others)."""
    records = [line for line in lines if "level" in line]
    for record in records:
        assert record.keys() >= FIELDS, record
    return records


def test_json_line_holds_the_traceback() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        record = _record("failed", request_id="r-1", api_key="ab12", exc_info=sys.exc_info())
    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry.keys() >= FIELDS
    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "app.test", "failed")
    assert (entry["request_id"], entry["api_key"]) == ("r-1", "ab12")
    assert "ZeroDivisionError" in entry["exc_info"]


def test_text_line_shows_trace_ids_only_inside_a_span() -> None:
    plain = TextFormatter().format(_record("m", request_id="r-1", api_key="ab12"))
    traced = TextFormatter().format(
        _record("m", request_id="r-1", api_key="ab12", trace_id="a" * 32, span_id="b" * 16)
    )

    assert plain.endswith("ERROR [r-1 key=ab12] app.test: m")
    assert traced.endswith(f"ERROR [r-1 key=ab12 trace={'a' * 32} span={'b' * 16}] app.test: m")


def _alembic_upgrade(database_url: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "json"}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@with_empty_database
def test_alembic_upgrade_logs_json(empty_database_url: tuple[str, str]) -> None:
    _, url = empty_database_url

    records = _records(_json_lines(_alembic_upgrade(url)))

    assert any(
        r["logger"].startswith("alembic") and "Running upgrade" in r["message"] for r in records
    )


def test_first_start_prints_the_local_key_as_a_record(tmp_path: Path) -> None:
    # The embedded database's first start makes a key and shows it once, here as one record.
    env = {**embedded_env(), "INSTANCE_PATH": str(tmp_path), "LOG_FORMAT": "json"}
    script = "from app import create_app; create_app(serving=True)"
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    records = _records(_json_lines(result.stdout + result.stderr))
    assert any(r["message"].startswith("created a local API key") for r in records), records


@pytest.mark.live
def test_worker_that_cannot_start_logs_one_record(tmp_path: Path) -> None:
    # An exporter OpenTelemetry does not have: create_app raises in every worker.
    env = {
        **embedded_env(),
        **server_env(free_port(), workers=1),
        "INSTANCE_PATH": str(tmp_path),
        "LOG_FORMAT": "json",
        "OTEL_TRACES_EXPORTER": "bogus",
    }
    result = subprocess.run(
        [sys.executable, "-m", "app.server"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0  # granian gives up on a worker that keeps failing
    records = _records(_json_lines(result.stdout + result.stderr))
    failed = [r for r in records if r["level"] == "CRITICAL"]
    assert failed, records
    assert "OTEL_TRACES_EXPORTER" in failed[0]["exc_info"]


def _refused_upload(base_url: str, request_id: str, token: str) -> bytes:
    # A declared length past the route's limit, with a key that may write: admitted, then
    # refused by the bridge before it reads a byte (413), with a warning logged.
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(
            f"POST /users HTTP/1.1\r\nHost: {host}\r\nX-Request-ID: {request_id}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {1 << 40}\r\n\r\n".encode()
        )
        return connection.recv(4096)


@pytest.mark.live
@pytest.mark.postgresql_only(reason="a missing table is a 500 with a traceback on PostgreSQL")
@with_empty_database
def test_server_prints_only_json_lines(
    empty_database_url: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, url = empty_database_url
    _alembic_upgrade(url)
    scopes = ["--scope", "users:write", "--scope", "posts:read"]
    token = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "api-keys", "create", "logs", *scopes],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
    ).stdout.strip()
    engine = create_engine(url)
    with engine.begin() as connection:
        # A release the database does not match: reading posts fails with a traceback.
        connection.execute(text("DROP TABLE post"))
    engine.dispose()
    auth = {"Authorization": f"Bearer {token}"}

    with serving(url, tmp_path_factory, LOG_FORMAT="json", OTEL_TRACES_EXPORTER="console") as srv:
        created = httpx.post(
            f"{srv.url}/users", json={"username": "ann", "email": "a@x.io"}, headers=auth
        )
        assert created.status_code == 201, created.text
        failed = httpx.get(
            f"{srv.url}/users/{created.json()['id']}/posts",
            headers={**auth, "X-Request-ID": "logs-500"},
        )
        assert failed.status_code == 500, failed.text
        assert b" 413 " in _refused_upload(srv.url, "logs-413", token)

    lines = _json_lines(srv.log_path.read_text())
    records = _records(lines)
    granian = [r["message"] for r in records if r["logger"].startswith("_granian")]
    assert any("Listening at" in m for m in granian), granian
    assert any("shutdown completed" in m for m in granian), granian
    (error,) = [r for r in records if r["message"] == "unhandled error"]
    assert error["request_id"] == "logs-500"
    assert "UndefinedTable" in error["exc_info"]
    assert HEX_TRACE_ID.fullmatch(error["trace_id"])
    # Refused on the event loop, outside any request context: the id is in the message.
    assert any(r["level"] == "WARNING" and "logs-413" in r["message"] for r in records)
    access = {r["request_id"]: r for r in records if r["logger"] == "app.access"}
    assert (access["logs-500"]["status"], access["logs-413"]["status"]) == (500, 413)
    assert access["logs-500"]["api_key"] != "-"
    # The console exporter's spans: the failed request's server span, sent before the exit.
    spans = [line for line in lines if "level" not in line]
    assert any(s["context"]["trace_id"] == f"0x{error['trace_id']}" for s in spans), spans
