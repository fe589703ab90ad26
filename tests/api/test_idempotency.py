"""Idempotency-Key on POST /users and POST /users/{id}/posts: a retry gets the first
response and creates nothing; another body is a 422; a running first request is a 409;
refused requests are not kept; expired and abandoned keys make way."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select

from app.api.idempotency import _fingerprint
from app.db.session import db
from app.models import ApiKey, IdempotencyKey, Post, User
from app.services import idempotency
from tests.factories import make_api_key, make_user
from tests.helpers import LiveServer, assert_problem

ADA = {"username": "ada", "email": "ada@example.com"}


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def _post(client: FlaskClient, key: str, body: dict[str, str], path: str = "/users") -> Any:
    return client.post(path, json=body, headers={"Idempotency-Key": key})


def test_a_retry_gets_the_first_response_and_creates_nothing(
    app: Flask, client: FlaskClient
) -> None:
    first = _post(client, "create-ada-1", ADA)
    # The same members in another order and spacing: the same request.
    retry = client.post(
        "/users",
        data='{ "email": "ada@example.com",  "username": "ada" }',
        content_type="application/json",
        headers={"Idempotency-Key": "create-ada-1"},
    )

    assert first.status_code == 201
    assert "Idempotency-Replayed" not in first.headers
    assert (retry.status_code, retry.get_data()) == (201, first.get_data())
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["ETag"] == first.headers["ETag"]
    assert retry.headers["Idempotency-Replayed"] == "true"
    assert _count(app, User) == 1


def test_a_post_retry_creates_one_post(app: Flask, client: FlaskClient) -> None:
    author = make_user(app)
    path = f"/users/{author.id}/posts"
    body = {"title": "Once", "body": "only"}

    statuses = [_post(client, "post-once", body, path).status_code for _ in range(3)]

    assert statuses == [201, 201, 201]
    assert _count(app, Post) == 1


def test_the_same_key_with_another_body_is_422(client: FlaskClient) -> None:
    _post(client, "reused", ADA)

    other = _post(client, "reused", {"username": "bob", "email": "bob@example.com"})
    elsewhere = _post(client, "reused", {"title": "t", "body": "b"}, "/users/1/posts")

    body = assert_problem(other, 422)
    assert body["errors"] == [
        {
            "loc": ["header", "Idempotency-Key"],
            "msg": "already used with another method, path or body",
            "type": "idempotency_key_reused",
        }
    ]
    assert_problem(elsewhere, 422)


def test_keys_belong_to_one_api_key(app: Flask, client: FlaskClient) -> None:
    _post(client, "shared-name", ADA)
    stranger = app.test_client()
    stranger.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(app)}"

    theirs = _post(stranger, "shared-name", {"username": "bob", "email": "bob@example.com"})

    assert theirs.status_code == 201
    assert "Idempotency-Replayed" not in theirs.headers


@pytest.mark.parametrize("key", ["", " ", "a b", "é", "x" * 256])
def test_a_malformed_key_is_400(app: Flask, client: FlaskClient, key: str) -> None:
    response = client.post("/users", json=ADA, headers={"Idempotency-Key": key})

    assert_problem(response, 400)
    assert _count(app, User) == 0


def test_a_refused_request_is_not_kept(app: Flask, client: FlaskClient) -> None:
    taken = make_user(app, username="ada")
    refused = _post(client, "after-the-conflict", ADA)
    client.delete(f"/users/{taken.id}")

    retried = _post(client, "after-the-conflict", ADA)

    assert_problem(refused, 409)
    assert retried.status_code == 201
    assert "Idempotency-Replayed" not in retried.headers


def _claim_row(app: Flask, token_prefix: str, key: str, **values: Any) -> None:
    with app.app_context():
        api_key_id = db.session.execute(
            select(ApiKey.id).where(ApiKey.prefix == token_prefix)
        ).scalar_one()
        db.session.execute(insert(IdempotencyKey).values(api_key_id=api_key_id, key=key, **values))
        db.session.commit()


def _prefix(token: str) -> str:
    return token.split("_")[1]


def test_a_running_first_request_makes_a_retry_409(
    app: Flask, client: FlaskClient, api_token: str
) -> None:
    with app.test_request_context("/users", method="POST", json=ADA):
        fingerprint = _fingerprint()
    soon = datetime.now(UTC) + timedelta(hours=1)
    _claim_row(app, _prefix(api_token), "running", fingerprint=fingerprint, expires_at=soon)

    assert_problem(_post(client, "running", ADA), 409)
    assert _count(app, User) == 0


def test_expired_and_abandoned_keys_make_way(
    app: Flask, client: FlaskClient, api_token: str
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    long_ago = datetime.now(UTC) - idempotency.ABANDONED_AFTER - timedelta(seconds=5)
    later = datetime.now(UTC) + timedelta(hours=1)
    prefix = _prefix(api_token)
    _claim_row(app, prefix, "expired", fingerprint="x", status=201, body=b"{}", expires_at=past)
    _claim_row(app, prefix, "abandoned", fingerprint="x", created_at=long_ago, expires_at=later)

    expired = _post(client, "expired", ADA)
    abandoned = _post(client, "abandoned", {"username": "bob", "email": "bob@example.com"})

    assert (expired.status_code, abandoned.status_code) == (201, 201)
    assert "Idempotency-Replayed" not in expired.headers
    assert _count(app, User) == 2


def test_expired_keys_are_purged_by_requests(
    app: Flask, client: FlaskClient, api_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(3):
        _claim_row(app, _prefix(api_token), f"old-{n}", fingerprint="x", expires_at=past)
    monkeypatch.setitem(idempotency._purged, "at", 0.0)  # as if a minute had passed

    _post(client, "new", ADA)

    assert _count(app, IdempotencyKey) == 1


CONCURRENT = 10


@pytest.mark.live
def test_concurrent_duplicates_make_one_user(
    app: Flask, api_token: str, request: pytest.FixtureRequest
) -> None:
    server: LiveServer = request.getfixturevalue("live_server")
    headers = {"Authorization": f"Bearer {api_token}", "Idempotency-Key": "at-once"}
    start = threading.Barrier(CONCURRENT)

    def create(_: int) -> tuple[int, bool]:
        start.wait()
        response = httpx.post(f"{server.url}/users", json=ADA, headers=headers, timeout=30)
        return response.status_code, "Idempotency-Replayed" in response.headers

    with ThreadPoolExecutor(CONCURRENT) as pool:
        outcomes = Counter(pool.map(create, range(CONCURRENT)))

    # One first 201; every other is a replay of it, or a 409 while it still ran.
    assert outcomes[(201, False)] == 1, f"{outcomes}\n{server.log()}"
    assert set(outcomes) <= {(201, False), (201, True), (409, False)}, outcomes
    assert _count(app, User) == 1
