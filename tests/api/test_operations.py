"""Health, readiness, request ids and what a dead database looks like."""

import logging
import os
import re
import warnings
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from app import create_app
from app.config import Settings
from app.db.session import db
from app.telemetry.request_ids import REQUEST_ID_HEADER, request_id_from
from tests.helpers import with_empty_database


def test_healthz_is_200(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_at_head(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def _readyz_at(app: Flask, client: FlaskClient, revision: str) -> TestResponse:
    with app.app_context():
        head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        db.session.commit()
    try:
        return client.get("/readyz")
    finally:
        with app.app_context():
            db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
            db.session.commit()


def test_readyz_is_503_when_schema_is_behind(app: Flask, client: FlaskClient) -> None:
    response = _readyz_at(app, client, "0003")  # an older migration of this release
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "behind" in response.get_json()["detail"]
    assert response.get_json()["reason"] == "behind"
    assert response.headers["Retry-After"] == "1"


def test_readyz_is_200_on_a_newer_releases_schema(app: Flask, client: FlaskClient) -> None:
    # Between the release step's migrate and the new replicas, the old ones must stay in
    # service: a migration this release does not know is a newer, compatible one.
    response = _readyz_at(app, client, "ffff_newer")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "sqlite:////nonexistent-directory/for/sure/app.db",
    ],
)
def test_unreachable_database_is_503_but_healthz_is_200(url: str, tmp_path: Path) -> None:
    dead = create_app(Settings(DATABASE_URL=url, INSTANCE_PATH=tmp_path, DB_CONNECT_TIMEOUT=1))
    client = dead.test_client()
    # Well-formed, so checking it needs the database.
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer umk_000000000000_" + "A" * 43
    assert client.get("/healthz").status_code == 200
    for response in (client.get("/readyz"), client.get("/users/1"), client.get("/users")):
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        text_body = response.get_data(as_text=True)
        assert "127.0.0.1" not in text_body
        assert "nonexistent" not in text_body
    assert client.get("/readyz").get_json()["reason"] == "unreachable"


@with_empty_database
def test_readyz_on_a_never_migrated_database_says_so_and_logs_it_once(
    empty_database_url: tuple[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A reachable database nobody migrated once answered "The database is unavailable."
    # and logged nothing: the operator could not tell it from an outage.
    _, url = empty_database_url
    app = create_app(Settings(DATABASE_URL=url, INSTANCE_PATH=tmp_path, AUTO_MIGRATE=False))
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="app.api.ops"):
        answers = [client.get("/readyz") for _ in range(3)]

    for response in answers:
        assert response.status_code == 503
        assert response.get_json()["reason"] == "not_migrated"
        assert "alembic upgrade head" in response.get_json()["detail"]
    logged = [r.getMessage() for r in caplog.records if r.name == "app.api.ops"]
    assert len(logged) == 1
    assert logged[0].startswith("not ready (not_migrated)")


def test_sane_request_id_is_echoed(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={REQUEST_ID_HEADER: "abc-123.def"})
    assert response.headers[REQUEST_ID_HEADER] == "abc-123.def"


@pytest.mark.parametrize("sent", ["", "x" * 200, "a b", "<script>", "-leading"])
def test_insane_request_id_is_replaced(client: FlaskClient, sent: str) -> None:
    response = client.get("/healthz", headers={REQUEST_ID_HEADER: sent})
    assert response.headers[REQUEST_ID_HEADER] != sent
    assert len(response.headers[REQUEST_ID_HEADER]) == 32


def test_new_request_ids_differ_across_forked_workers() -> None:
    # The server forks its workers after importing the app: each must draw its own ids.
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns of fork() beside threads; the child only writes and leaves.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: send one new id, leave at once
        os.write(write, request_id_from("").encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    mine = {request_id_from("") for _ in range(1000)}
    assert len(mine) == 1000
    assert child not in mine
    assert all(re.fullmatch(r"[0-9a-f]{32}", new) for new in (*mine, child))


def test_error_log_line_carries_the_request_id(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(user_id: int) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.services.users.get_user", explode)
    with caplog.at_level(logging.ERROR):
        response = client.get("/users/1", headers={REQUEST_ID_HEADER: "trace-me-42"})
    assert response.status_code == 500
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert records
    assert {getattr(r, "request_id", None) for r in records} == {"trace-me-42"}
