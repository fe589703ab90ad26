"""Round trips to MariaDB per request, counted at PyMySQL's command layer."""

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.config import Settings
from tests.factories import make_user
from tests.helpers import engines, listening

pytestmark = pytest.mark.backends("mysql", reason="PyMySQL's commands are MariaDB's")

Commands = list[str]


@pytest.fixture(scope="module")
def traced(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, Commands]]:
    """An app whose every MariaDB connection notes each SQL text it sends (one command, one
    round trip: PyMySQL waits for each answer)."""
    sent: Commands = []
    traced_app = create_app(
        Settings(DATABASE_URL=database_url, INSTANCE_PATH=tmp_path_factory.mktemp("traced"))
    )

    def trace(dbapi_connection: Any, _record: Any) -> None:
        execute_command = dbapi_connection._execute_command

        def noted(command: int, sql: Any) -> Any:
            sent.append(sql.decode() if isinstance(sql, bytes) else str(sql))
            return execute_command(command, sql)

        dbapi_connection._execute_command = noted

    with listening(traced_app, "connect", trace):
        yield traced_app, sent
    for engine in engines(traced_app):
        engine.dispose()


def _sent(traced: tuple[Flask, Commands], method: str, url: str, **kwargs: Any) -> Commands:
    app, sent = traced
    before = len(sent)
    response = app.test_client().open(url, method=method, **kwargs)
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    return sent[before:]


def test_get_by_id_costs_one_round_trip(
    app: Flask, traced: tuple[Flask, Commands], auth_headers: dict[str, str]
) -> None:
    user = make_user(app)
    _sent(traced, "GET", f"/users/{user.id}", headers=auth_headers)  # verifies the key
    sent = _sent(traced, "GET", f"/users/{user.id}", headers=auth_headers)
    # The autocommit engine's unit used to end in a ROLLBACK of nothing: a second trip.
    assert len(sent) == 1, sent


def test_list_costs_one_round_trip(
    app: Flask, traced: tuple[Flask, Commands], auth_headers: dict[str, str]
) -> None:
    make_user(app)
    _sent(traced, "GET", "/users", headers=auth_headers)
    sent = _sent(traced, "GET", "/users?limit=100", headers=auth_headers)
    assert len(sent) == 1, sent
