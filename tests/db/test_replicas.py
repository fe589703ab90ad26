"""Reads that may be stale go to a streaming replica; with its Consistency-Token back, a
client reads its own writes. A private primary and a pg_basebackup replica whose replay is
held back 2 s (recovery_min_apply_delay), so a fresh write is certainly not there yet."""

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings
from app.db import migrations
from app.db.replicas import TOKEN_HEADER
from app.db.session import db
from tests.factories import make_api_key
from tests.faults.cluster import PrivateCluster, StreamingReplica
from tests.helpers import free_port

APPLY_DELAY_S = 2
LSN = re.compile(r"[0-9A-F]+/[0-9A-F]+")


@pytest.fixture(scope="module")
def primary_and_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app on a private primary, reading from its delayed replica."""
    primary = PrivateCluster(free_port())
    replica = StreamingReplica(primary, free_port())
    try:
        primary.create()
        settings = Settings(
            DATABASE_URL=primary.url,
            DATABASE_REPLICA_URL=replica.url,
            INSTANCE_PATH=tmp_path_factory.mktemp("instance"),
            ASYNC_DEBUG=True,
            RATE_LIMIT="",
        )
        app = create_app(settings)
        app.config["TESTING"] = True
        with app.app_context():
            migrations.migrate(db.engine)
        # Made after the schema, so the copy starts with it; from here on it lags.
        replica.create(apply_delay=f"{APPLY_DELAY_S}s")
        yield app
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
    finally:
        replica.destroy()
        primary.destroy()


@pytest.fixture
def replicated(primary_and_replica: Flask) -> FlaskClient:
    """A client with every scope (keys are looked up on the primary: usable at once)."""
    client = primary_and_replica.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(primary_and_replica)}"
    return client


def test_without_the_token_a_fresh_write_is_stale_with_it_never(replicated: FlaskClient) -> None:
    created = replicated.post("/users", json={"username": "stale", "email": "stale@x.io"})
    assert created.status_code == 201
    token = created.headers[TOKEN_HEADER]
    assert LSN.fullmatch(token), token
    user = created.get_json()["id"]
    # The replica has not replayed the insert: a read without the token does not see it.
    assert replicated.get(f"/users/{user}").status_code == 404
    assert replicated.get("/users", query_string={"username": "stale"}).get_json()["items"] == []
    with_token = {TOKEN_HEADER: token}
    assert replicated.get(f"/users/{user}", headers=with_token).status_code == 200
    found = replicated.get("/users", query_string={"username": "stale"}, headers=with_token)
    assert [u["id"] for u in found.get_json()["items"]] == [user]

    for n in range(20):
        made = replicated.post("/users", json={"username": f"fresh{n}", "email": f"f{n}@x.io"})
        new = made.get_json()["id"]
        read = replicated.get(f"/users/{new}", headers={TOKEN_HEADER: made.headers[TOKEN_HEADER]})
        assert read.status_code == 200, n
        changed = replicated.patch(f"/users/{new}", json={"email": f"g{n}@x.io"})
        again = replicated.get(
            f"/users/{new}", headers={TOKEN_HEADER: changed.headers[TOKEN_HEADER]}
        )
        assert again.get_json()["email"] == f"g{n}@x.io", n


def test_the_replica_serves_once_it_has_replayed(replicated: FlaskClient) -> None:
    created = replicated.post("/users", json={"username": "later", "email": "later@x.io"})
    user, token = created.get_json()["id"], created.headers[TOKEN_HEADER]
    deadline = time.monotonic() + APPLY_DELAY_S + 10
    while replicated.get(f"/users/{user}").status_code == 404:
        assert time.monotonic() < deadline, "the replica never replayed the insert"
        time.sleep(0.1)
    assert replicated.get(f"/users/{user}", headers={TOKEN_HEADER: token}).status_code == 200


def test_a_token_not_ours_reads_the_primary(replicated: FlaskClient) -> None:
    created = replicated.post("/users", json={"username": "forged", "email": "forged@x.io"})
    user = created.get_json()["id"]
    for forged in ("not a position", "0/0; SELECT 1", ""):
        response = replicated.get(f"/users/{user}", headers={TOKEN_HEADER: forged})
        assert response.status_code == 200, forged


def test_failed_writes_and_reads_carry_no_token(replicated: FlaskClient) -> None:
    bad = replicated.post("/users", json={"username": "", "email": "nope"})
    assert bad.status_code == 422
    assert TOKEN_HEADER not in bad.headers
    assert TOKEN_HEADER not in replicated.get("/users").headers


def test_without_a_replica_there_is_no_token(client: FlaskClient) -> None:
    created = client.post("/users", json={"username": "single", "email": "single@x.io"})
    assert created.status_code == 201
    assert TOKEN_HEADER not in created.headers


def test_a_replica_must_be_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL streaming replica"):
        Settings(DATABASE_REPLICA_URL="mysql://root@127.0.0.1/x", INSTANCE_PATH=tmp_path)
