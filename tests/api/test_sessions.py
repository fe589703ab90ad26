"""Signing in: sessions, access and refresh tokens, rotation, reuse detection, sign-out."""

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.db.session import db
from app.models import UserSession
from app.services import sessions
from tests.factories import make_user, set_password
from tests.helpers import LiveServer, assert_problem

PASSWORD = "correct horse battery staple"


def _sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/auth/sessions", json={"username": username, "password": password})


def _signed_in(app: Flask, client: FlaskClient, name: str = "ann") -> dict[str, Any]:
    user = make_user(app, username=name, email=f"{name}@example.com")
    set_password(app, user.id, PASSWORD)
    response = _sign_in(client, name)
    assert response.status_code == 201, response.get_data(as_text=True)
    tokens: dict[str, Any] = response.get_json()
    tokens["user_id"] = user.id
    return tokens


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refresh(client: FlaskClient, token: str) -> Any:
    return client.post("/auth/sessions/refresh", json={"refresh_token": token})


@pytest.mark.parametrize("login", ["ann", "ANN", "ann@example.com", "Ann@Example.COM"])
def test_sign_in_by_username_or_email_gives_working_tokens(
    app: Flask, anonymous_client: FlaskClient, login: str
) -> None:
    user = make_user(app, username="ann", email="ann@example.com")
    set_password(app, user.id, PASSWORD)

    response = _sign_in(anonymous_client, login)

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "session_id"}
    assert body["access_token"].startswith("uma_")
    assert body["refresh_token"].startswith("umr_")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    whoami = anonymous_client.get("/auth/whoami", headers=_bearer(body["access_token"]))
    assert whoami.status_code == 200
    assert whoami.get_json() == {
        "kind": "user",
        "user_id": user.id,
        "username": "ann",
        "session_id": body["session_id"],
        "scopes": [],
    }


def test_whoami_names_an_api_key_by_kind(client: FlaskClient) -> None:
    body = client.get("/auth/whoami").get_json()
    assert body["kind"] == "api_key"
    assert {"name", "prefix", "scopes"} <= body.keys()


def test_tokens_are_stored_only_as_hashes(app: Flask, anonymous_client: FlaskClient) -> None:
    tokens = _signed_in(app, anonymous_client)
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(select(table)):
                for token in (tokens["access_token"], tokens["refresh_token"]):
                    assert token not in repr(tuple(row)), table.name
                    assert token[4:] not in repr(tuple(row)), table.name


def test_refresh_rotates_the_pair_once(app: Flask, anonymous_client: FlaskClient) -> None:
    first = _signed_in(app, anonymous_client)

    second = _refresh(anonymous_client, first["refresh_token"])

    assert second.status_code == 200
    new = second.get_json()
    assert new["session_id"] == first["session_id"]
    assert new["refresh_token"] != first["refresh_token"]
    assert new["access_token"] != first["access_token"]
    me = anonymous_client.get("/auth/whoami", headers=_bearer(new["access_token"]))
    assert me.status_code == 200
    # The new refresh token works once too.
    assert _refresh(anonymous_client, new["refresh_token"]).status_code == 200


def test_a_spent_refresh_token_revokes_its_whole_session(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    first = _signed_in(app, anonymous_client)
    new = _refresh(anonymous_client, first["refresh_token"]).get_json()
    assert (
        anonymous_client.get("/auth/whoami", headers=_bearer(new["access_token"])).status_code
        == 200
    )

    reused = _refresh(anonymous_client, first["refresh_token"])

    assert_problem(reused, 401)
    # The thief's or the client's: whoever holds the newer pair loses it too.
    assert_problem(_refresh(anonymous_client, new["refresh_token"]), 401)
    assert_problem(anonymous_client.get("/auth/whoami", headers=_bearer(new["access_token"])), 401)
    with app.app_context():
        session = db.session.get(UserSession, first["session_id"])
        assert session is not None
        assert session.revoked_at is not None


@pytest.mark.parametrize(
    "token", ["umr_" + "A" * 43, "not a token", "umk_000000000000_" + "A" * 43]
)
def test_an_unknown_refresh_token_is_a_401_and_revokes_nothing(
    app: Flask, anonymous_client: FlaskClient, token: str
) -> None:
    tokens = _signed_in(app, anonymous_client)

    assert_problem(_refresh(anonymous_client, token), 401)

    assert _refresh(anonymous_client, tokens["refresh_token"]).status_code == 200


def test_an_expired_refresh_or_access_token_is_refused(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    tokens = _signed_in(app, anonymous_client)
    past = datetime.now(UTC) - timedelta(seconds=1)
    with app.app_context():
        db.session.execute(
            update(UserSession)
            .where(UserSession.id == tokens["session_id"])
            .values(access_expires_at=past, refresh_expires_at=past)
        )
        db.session.commit()

    assert_problem(
        anonymous_client.get("/auth/whoami", headers=_bearer(tokens["access_token"])), 401
    )
    assert_problem(_refresh(anonymous_client, tokens["refresh_token"]), 401)


def test_sessions_are_listed_for_their_user_only(app: Flask, anonymous_client: FlaskClient) -> None:
    mine = _signed_in(app, anonymous_client, "ann")
    again = _sign_in(anonymous_client, "ann").get_json()
    _signed_in(app, anonymous_client, "bob")

    response = anonymous_client.get("/auth/sessions", headers=_bearer(mine["access_token"]))

    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [(i["id"], i["current"]) for i in items] == [
        (again["session_id"], False),
        (mine["session_id"], True),
    ]
    assert set(items[0]) == {
        "id",
        "created_at",
        "refreshed_at",
        "last_used_at",
        "refresh_expires_at",
        "current",
    }
    page = anonymous_client.get("/auth/sessions?limit=1", headers=_bearer(mine["access_token"]))
    cursor = page.get_json()["next_cursor"]
    rest = anonymous_client.get(
        f"/auth/sessions?limit=1&cursor={cursor}", headers=_bearer(mine["access_token"])
    )
    assert [i["id"] for i in rest.get_json()["items"]] == [mine["session_id"]]


def test_a_user_revokes_their_own_sessions_only(app: Flask, anonymous_client: FlaskClient) -> None:
    ann = _signed_in(app, anonymous_client, "ann")
    other = _sign_in(anonymous_client, "ann").get_json()
    bob = _signed_in(app, anonymous_client, "bob")
    headers = _bearer(ann["access_token"])

    assert_problem(
        anonymous_client.delete(f"/auth/sessions/{bob['session_id']}", headers=headers), 404
    )
    assert (
        anonymous_client.get("/auth/whoami", headers=_bearer(bob["access_token"])).status_code
        == 200
    )

    deleted = anonymous_client.delete(f"/auth/sessions/{other['session_id']}", headers=headers)

    assert deleted.status_code == 204
    assert_problem(
        anonymous_client.get("/auth/whoami", headers=_bearer(other["access_token"])), 401
    )
    assert_problem(_refresh(anonymous_client, other["refresh_token"]), 401)
    assert anonymous_client.get("/auth/whoami", headers=headers).status_code == 200


def test_sign_out_revokes_the_current_session(app: Flask, anonymous_client: FlaskClient) -> None:
    tokens = _signed_in(app, anonymous_client)
    headers = _bearer(tokens["access_token"])

    assert anonymous_client.delete("/auth/sessions/current", headers=headers).status_code == 204

    assert_problem(anonymous_client.get("/auth/whoami", headers=headers), 401)
    assert_problem(_refresh(anonymous_client, tokens["refresh_token"]), 401)
    assert_problem(anonymous_client.delete("/auth/sessions/current", headers=headers), 401)


def test_session_endpoints_refuse_an_api_key(client: FlaskClient) -> None:
    assert_problem(client.get("/auth/sessions"), 403)
    assert_problem(client.delete("/auth/sessions/current"), 403)


def test_an_access_token_lacks_the_api_keys_scopes(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    tokens = _signed_in(app, anonymous_client)
    # In no group, a user's token carries no scope: every data operation is a 403.
    response = anonymous_client.get("/users", headers=_bearer(tokens["access_token"]))
    assert_problem(response, 403)


def test_a_revocation_is_announced_on_the_api_keys_channel(app: Flask) -> None:
    # The cache forgets a session by its id, or every session of a user, and passes any
    # other payload on to the API keys' cache.
    info = sessions.SessionInfo(7, 3, "ann", (), datetime.now(UTC) + timedelta(minutes=1))
    for payload, forgotten in [("session:7", True), ("user:3", True), ("user:4", False)]:
        sessions._verified["digest"] = (info, float("inf"))
        sessions.forget_revoked(payload)
        assert ("digest" not in sessions._verified) is forgotten, payload
    sessions._verified.clear()


@pytest.mark.live
@pytest.mark.backends("postgresql", "mysql", reason="concurrent writers on a server database")
def test_twenty_concurrent_refreshes_give_exactly_one_200(
    app: Flask, live_server: LiveServer
) -> None:
    user = make_user(app, username="racer", email="racer@example.com")
    set_password(app, user.id, PASSWORD)
    signed_in = httpx.post(
        f"{live_server.url}/auth/sessions", json={"username": "racer", "password": PASSWORD}
    )
    assert signed_in.status_code == 201, signed_in.text
    token = signed_in.json()["refresh_token"]
    start = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def refresh() -> None:
        start.wait(10)
        response = httpx.post(
            f"{live_server.url}/auth/sessions/refresh", json={"refresh_token": token}, timeout=30
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=refresh) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [200] + [401] * 19, live_server.log()
