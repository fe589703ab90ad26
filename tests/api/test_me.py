"""The signed-in user's own account: GET and PATCH /me, PUT /me/password."""

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.session import db
from app.models import User
from tests.factories import make_user, set_password
from tests.helpers import assert_problem

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new and longer passphrase"


def _sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/auth/sessions", json={"username": username, "password": password})


def _signed_in(app: Flask, client: FlaskClient, name: str = "ann") -> tuple[int, dict[str, str]]:
    user = make_user(app, username=name, email=f"{name}@example.com")
    set_password(app, user.id, PASSWORD)
    response = _sign_in(client, name)
    assert response.status_code == 201, response.get_data(as_text=True)
    return user.id, {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_me_is_the_signed_in_user_with_no_scope_needed(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    user_id, headers = _signed_in(app, anonymous_client)
    make_user(app, username="bob", email="bob@example.com")

    response = anonymous_client.get("/me", headers=headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == user_id
    assert body["username"] == "ann"
    assert body["active"] is True
    assert list(body) == ["id", "username", "email", "active", "created_at", "updated_at"]
    assert "password_hash" not in response.get_data(as_text=True)
    again = anonymous_client.get(
        "/me", headers={**headers, "If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


def test_me_refuses_an_api_key(client: FlaskClient) -> None:
    assert_problem(client.get("/me"), 403)
    assert_problem(client.patch("/me", json={"username": "x"}), 403)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert_problem(client.put("/me/password", json=body), 403)


def test_a_user_changes_their_own_username_and_email(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    user_id, headers = _signed_in(app, anonymous_client)
    make_user(app, username="bob", email="bob@example.com")

    response = anonymous_client.patch(
        "/me", json={"username": "annie", "email": "annie@example.com"}, headers=headers
    )

    assert response.status_code == 200
    assert response.get_json()["username"] == "annie"
    assert response.get_json()["id"] == user_id
    problem = assert_problem(
        anonymous_client.patch("/me", json={"username": "BOB"}, headers=headers), 409
    )
    assert problem["field"] == "username"
    assert_problem(anonymous_client.patch("/me", json={"active": False}, headers=headers), 422)
    stale = anonymous_client.patch(
        "/me", json={"email": "x@example.com"}, headers={**headers, "If-Match": '"1"'}
    )
    assert_problem(stale, 412)
    with app.app_context():
        names = db.session.execute(select(User.username).order_by(User.id)).scalars().all()
    assert names == ["annie", "bob"]


def test_a_password_change_needs_the_current_one_and_revokes_the_other_sessions(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    _, headers = _signed_in(app, anonymous_client)
    other = {
        "Authorization": f"Bearer {_sign_in(anonymous_client, 'ann').get_json()['access_token']}"
    }
    assert anonymous_client.get("/me", headers=other).status_code == 200
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}

    wrong = {**body, "current_password": "not the password at all"}
    problem = assert_problem(anonymous_client.put("/me/password", json=wrong, headers=headers), 422)
    assert problem["errors"][0]["loc"] == ["body", "current_password"]  # type: ignore[index]
    common = {**body, "new_password": "password"}
    problem = assert_problem(
        anonymous_client.put("/me/password", json=common, headers=headers), 422
    )
    assert problem["errors"][0]["type"] == "password_common"  # type: ignore[index]
    assert anonymous_client.get("/me", headers=other).status_code == 200

    response = anonymous_client.put("/me/password", json=body, headers=headers)

    assert response.status_code == 204
    assert anonymous_client.get("/me", headers=headers).status_code == 200  # this session stays
    assert_problem(anonymous_client.get("/me", headers=other), 401)  # the other is revoked
    assert_problem(_sign_in(anonymous_client, "ann"), 401)
    assert _sign_in(anonymous_client, "ann", NEW_PASSWORD).status_code == 201
