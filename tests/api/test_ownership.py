"""Ownership (OWASP API1, API5): a signed-in user without users:admin changes only their own
user and posts; deactivation needs users:admin and signs the user out at once."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.services.api_keys import ALL_SCOPES
from tests.factories import make_api_key, make_group, make_post, make_user, set_password
from tests.helpers import assert_problem

PASSWORD = "correct horse battery staple"
EVERYTHING_BUT_ADMIN = [s for s in ALL_SCOPES if s != "users:admin"]


def _sign_in(client: FlaskClient, name: str) -> Any:
    return client.post("/auth/sessions", json={"username": name, "password": PASSWORD})


def _member(app: Flask, client: FlaskClient, name: str, group: int) -> tuple[int, dict[str, str]]:
    user = make_user(app, username=name, email=f"{name}@example.com")
    set_password(app, user.id, PASSWORD)
    assert client.put(f"/groups/{group}/members/{user.id}").status_code == 204
    response = _sign_in(client, name)
    assert response.status_code == 201, response.get_data(as_text=True)
    return user.id, {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_a_member_changes_only_their_own_user(app: Flask, client: FlaskClient) -> None:
    writers = make_group(app, EVERYTHING_BUT_ADMIN)
    ann, headers = _member(app, client, "ann", writers)
    bob = make_user(app, username="bob", email="bob@example.com")
    user = app.test_client()

    for method in ("PATCH", "PUT"):
        other = user.open(
            f"/users/{bob.id}", method=method, json={"email": "x@example.com"}, headers=headers
        )
        assert_problem(other, 403)
    assert_problem(user.delete(f"/users/{bob.id}", headers=headers), 403)
    # Reading follows the scopes.
    assert user.get(f"/users/{bob.id}", headers=headers).get_json()["email"] == "bob@example.com"

    own = user.patch(f"/users/{ann}", json={"username": "ann2"}, headers=headers)
    assert own.status_code == 200
    assert own.get_json()["username"] == "ann2"
    # Their own email changes only once the new address confirms (tests/mail), as on /me.
    mailed = user.patch(f"/users/{ann}", json={"email": "ann2@example.com"}, headers=headers)
    assert mailed.status_code == 200
    assert mailed.get_json()["email"] != "ann2@example.com"
    assert user.delete(f"/users/{ann}", headers=headers).status_code == 204


def test_another_users_id_is_a_403_whether_or_not_it_exists(
    app: Flask, client: FlaskClient
) -> None:
    # A member who may not read users learns nothing of which ids exist by trying changes.
    writers = make_group(app, ["users:write"])
    _, headers = _member(app, client, "ann", writers)
    bob = make_user(app, username="bob", email="bob@example.com")
    user = app.test_client()

    for target in (bob.id, bob.id + 1000):
        patched = user.patch(f"/users/{target}", json={"email": "x@example.com"}, headers=headers)
        assert_problem(patched, 403)
        assert_problem(user.delete(f"/users/{target}", headers=headers), 403)
    assert_problem(user.get(f"/users/{bob.id}", headers=headers), 403)


def test_a_member_changes_only_their_own_posts(app: Flask, client: FlaskClient) -> None:
    writers = make_group(app, EVERYTHING_BUT_ADMIN)
    ann, headers = _member(app, client, "ann", writers)
    bob = make_user(app, username="bob", email="bob@example.com")
    bobs = make_post(app, bob)
    user = app.test_client()

    for method in ("PATCH", "PUT"):
        response = user.open(
            f"/posts/{bobs.id}", method=method, json={"title": "Mine"}, headers=headers
        )
        assert_problem(response, 403)
    assert_problem(user.delete(f"/posts/{bobs.id}", headers=headers), 403)
    posted = user.post(f"/users/{bob.id}/posts", json={"title": "T", "body": "B"}, headers=headers)
    assert_problem(posted, 403)
    assert client.get(f"/posts/{bobs.id}").get_json()["title"] == bobs.title
    assert_problem(user.patch("/posts/999999", json={"title": "x"}, headers=headers), 404)

    mine = user.post(f"/users/{ann}/posts", json={"title": "T", "body": "B"}, headers=headers)
    assert mine.status_code == 201
    post_id = mine.get_json()["id"]
    assert user.patch(f"/posts/{post_id}", json={"title": "U"}, headers=headers).status_code == 200
    assert user.delete(f"/posts/{post_id}", headers=headers).status_code == 204


def test_an_admin_member_and_an_api_key_change_anyone(app: Flask, client: FlaskClient) -> None:
    admins = make_group(app, ALL_SCOPES)
    _, headers = _member(app, client, "ann", admins)
    bob = make_user(app, username="bob", email="bob@example.com")
    bobs = make_post(app, bob)
    user = app.test_client()

    response = user.patch(f"/users/{bob.id}", json={"email": "b2@example.com"}, headers=headers)
    assert response.status_code == 200
    assert user.patch(f"/posts/{bobs.id}", json={"title": "A"}, headers=headers).status_code == 200
    # An API key keeps its global meaning, with users:admin or without.
    key = app.test_client()
    key.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(app, EVERYTHING_BUT_ADMIN)}"
    assert key.patch(f"/users/{bob.id}", json={"email": "b3@example.com"}).status_code == 200
    assert key.delete(f"/posts/{bobs.id}").status_code == 204


def test_deactivating_needs_users_admin(app: Flask, client: FlaskClient) -> None:
    writers = make_group(app, EVERYTHING_BUT_ADMIN)
    ann, headers = _member(app, client, "ann", writers)
    user = app.test_client()

    # Not even themselves.
    problem = assert_problem(
        user.patch(f"/users/{ann}", json={"active": False}, headers=headers), 403
    )
    assert problem["scopes"] == ["users:admin"]
    key = app.test_client()
    key.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(app, EVERYTHING_BUT_ADMIN)}"
    assert_problem(key.patch(f"/users/{ann}", json={"active": False}), 403)
    assert user.get("/me", headers=headers).get_json()["active"] is True


def test_a_deactivated_user_is_signed_out_at_once_and_reactivated(
    app: Flask, client: FlaskClient
) -> None:
    readers = make_group(app, ["users:read"])
    ann, headers = _member(app, client, "ann", readers)
    refresh = _sign_in(client, "ann").get_json()["refresh_token"]
    user = app.test_client()
    assert user.get("/me", headers=headers).status_code == 200  # cached from now on

    response = client.patch(f"/users/{ann}", json={"active": False})

    assert response.status_code == 200
    assert response.get_json()["active"] is False
    assert_problem(user.get("/me", headers=headers), 401)  # the next request
    assert_problem(user.post("/auth/sessions/refresh", json={"refresh_token": refresh}), 401)
    refused = assert_problem(_sign_in(user, "ann"), 401)
    assert refused["detail"] == "The username or password is wrong."

    assert client.put(f"/users/{ann}", json={"active": True}).get_json()["active"] is True
    assert _sign_in(user, "ann").status_code == 201
    assert_problem(user.get("/me", headers=headers), 401)  # revoked sessions stay revoked


@pytest.mark.parametrize("sent", [0, 1, "false", "yes"])
def test_active_takes_only_a_json_boolean(client: FlaskClient, sent: object) -> None:
    # The document says boolean; lax validation took 0 as false (the contract fuzz sent it).
    user = client.post("/users", json={"username": "strict", "email": "strict@example.com"})
    response = client.patch(user.headers["Location"], json={"active": sent})
    assert response.status_code == 422
