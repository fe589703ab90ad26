"""Round trips to PostgreSQL per request, read off libpq's own protocol trace."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask

from app import create_app
from app.config import Settings
from tests.factories import make_user
from tests.helpers import engines, listening

pytestmark = pytest.mark.postgresql_only("round trips are counted on PostgreSQL")


@pytest.fixture(scope="module")
def traced(
    app: Flask, backend: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, Path]]:
    """An app whose every PostgreSQL connection writes libpq's message trace to a file."""
    trace_path = tmp_path_factory.mktemp("trace") / "libpq.trace"
    trace_file = trace_path.open("w")
    traced_app = create_app(
        Settings(DATABASE_URL=database_url, INSTANCE_PATH=tmp_path_factory.mktemp("traced"))
    )

    def trace(dbapi_connection: Any, _record: Any) -> None:
        pgconn = dbapi_connection.pgconn
        pgconn.trace(trace_file.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    with listening(traced_app, "connect", trace):
        yield traced_app, trace_path
    for engine in engines(traced_app):
        engine.dispose()
    trace_file.close()


def _round_trips(
    traced: tuple[Flask, Path], method: str, url: str, **kwargs: Any
) -> tuple[int, list[str]]:
    app, trace_path = traced
    before = len(trace_path.read_text().splitlines())
    response = app.test_client().open(url, method=method, **kwargs)
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    lines = trace_path.read_text().splitlines()[before:]
    # Every exchange with the server ends with its ReadyForQuery message.
    trips = sum(1 for line in lines if line.startswith("B") and "ReadyForQuery" in line)
    sent = [line for line in lines if line.startswith("F") and ("Query" in line or "Parse" in line)]
    return trips, sent


def test_get_by_id_costs_one_round_trip(
    app: Flask, traced: tuple[Flask, Path], auth_headers: dict[str, str]
) -> None:
    user = make_user(app)
    _round_trips(traced, "GET", f"/users/{user.id}", headers=auth_headers)  # verifies the key
    trips, sent = _round_trips(traced, "GET", f"/users/{user.id}", headers=auth_headers)
    assert trips == 1, sent


def test_list_costs_one_round_trip(
    app: Flask, traced: tuple[Flask, Path], auth_headers: dict[str, str]
) -> None:
    make_user(app)
    _round_trips(traced, "GET", "/users", headers=auth_headers)
    trips, sent = _round_trips(traced, "GET", "/users?limit=100", headers=auth_headers)
    assert trips == 1, sent


def test_post_costs_at_most_three_round_trips(
    traced: tuple[Flask, Path], auth_headers: dict[str, str]
) -> None:
    _round_trips(traced, "GET", "/users", headers=auth_headers)
    body = {"username": "roundtrip", "email": "roundtrip@example.com"}
    trips, sent = _round_trips(traced, "POST", "/users", json=body, headers=auth_headers)
    # The issue allows three (BEGIN, INSERT, COMMIT); one statement in autocommit needs one.
    assert trips == 1, sent


def test_update_and_delete_cost_one_round_trip_each(
    app: Flask, traced: tuple[Flask, Path], auth_headers: dict[str, str]
) -> None:
    user = make_user(app)
    _round_trips(traced, "GET", "/users", headers=auth_headers)
    url = f"/users/{user.id}"
    patched = _round_trips(traced, "PATCH", url, json={"username": "moved"}, headers=auth_headers)
    assert patched[0] == 1, patched[1]
    deleted = _round_trips(traced, "DELETE", url, headers=auth_headers)
    assert deleted[0] == 1, deleted[1]
