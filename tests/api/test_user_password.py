"""An admin sets a user's password: PUT /users/{id}/password (users:admin)."""

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.services.api_keys import ALL_SCOPES
from tests.factories import make_api_key, make_user, set_password
from tests.helpers import assert_problem

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new and longer passphrase"


def _sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> Any:
    return client.post("/auth/sessions", json={"username": name, "password": password})


def _bearer(response: Any) -> dict[str, str]:
    assert response.status_code == 201, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_an_admin_sets_a_password_and_the_users_sessions_end(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    ann = make_user(app, username="ann", email="ann@example.com")
    set_password(app, ann.id, PASSWORD)
    first = _bearer(_sign_in(anonymous_client, "ann"))
    second = _bearer(_sign_in(anonymous_client, "ann"))
    body = {"new_password": NEW_PASSWORD}

    response = client.put(f"/users/{ann.id}/password", json=body)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_problem(anonymous_client.get("/me", headers=first), 401)
    assert_problem(anonymous_client.get("/me", headers=second), 401)
    assert_problem(_sign_in(anonymous_client, "ann"), 401)
    assert _sign_in(anonymous_client, "ann", NEW_PASSWORD).status_code == 201


def test_a_user_without_a_password_gets_one(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    bob = make_user(app, username="bob", email="bob@example.com")
    assert_problem(_sign_in(anonymous_client, "bob", NEW_PASSWORD), 401)

    response = client.put(f"/users/{bob.id}/password", json={"new_password": NEW_PASSWORD})

    assert response.status_code == 204
    assert _sign_in(anonymous_client, "bob", NEW_PASSWORD).status_code == 201


def test_a_refused_password_names_its_rule_and_changes_nothing(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    ann = make_user(app, username="ann", email="ann@example.com")
    set_password(app, ann.id, PASSWORD)
    headers = _bearer(_sign_in(anonymous_client, "ann"))
    cases = {
        "Zq9!xy": "password_too_short",
        "x" * 129: "password_too_long",
        "iloveyou": "password_common",
    }

    for password, rule in cases.items():
        problem = assert_problem(
            client.put(f"/users/{ann.id}/password", json={"new_password": password}), 422
        )
        assert problem["errors"] == [
            {"loc": ["body", "new_password"], "msg": problem["errors"][0]["msg"], "type": rule}  # type: ignore[index]
        ]
        assert password not in str(problem)
    assert_problem(client.put(f"/users/{ann.id}/password", json={"password": NEW_PASSWORD}), 422)

    assert anonymous_client.get("/me", headers=headers).status_code == 200
    assert _sign_in(anonymous_client, "ann").status_code == 201


def test_an_absent_user_is_not_found(client: FlaskClient) -> None:
    assert_problem(client.put("/users/999999/password", json={"new_password": NEW_PASSWORD}), 404)


def test_setting_a_password_needs_users_admin(app: Flask, anonymous_client: FlaskClient) -> None:
    ann = make_user(app, username="ann", email="ann@example.com")
    set_password(app, ann.id, PASSWORD)
    everything_else = [s for s in ALL_SCOPES if s != "users:admin"]
    key = {"Authorization": f"Bearer {make_api_key(app, everything_else)}"}
    own = _bearer(_sign_in(anonymous_client, "ann"))
    body = {"new_password": NEW_PASSWORD}

    assert_problem(anonymous_client.put(f"/users/{ann.id}/password", json=body, headers=key), 403)
    # Not even one's own: PUT /me/password asks for the current password.
    assert_problem(anonymous_client.put(f"/users/{ann.id}/password", json=body, headers=own), 403)
    assert_problem(anonymous_client.put(f"/users/{ann.id}/password", json=body), 401)
    assert _sign_in(anonymous_client, "ann").status_code == 201
