"""The users contract: the tutorial's flow and its documented bodies."""

from datetime import datetime

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_user


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


def test_create_user_returns_201_location_and_body(client: FlaskClient) -> None:
    response = client.post("/users", json={"username": "davidchen", "email": "david@example.com"})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/users/{body['id']}"
    assert body["username"] == "davidchen"
    assert body["email"] == "david@example.com"
    assert body["created_at"].endswith("Z")
    assert _parse_time(body["created_at"]) == _parse_time(body["updated_at"])


def test_get_user_returns_the_user(app: Flask, client: FlaskClient) -> None:
    user = make_user(app)
    response = client.get(f"/users/{user.id}")
    assert response.status_code == 200
    assert response.get_json()["username"] == user.username


def test_put_with_email_only_keeps_username_and_moves_updated_at(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user(app, username="davidchen", email="david@example.com")
    response = client.put(f"/users/{user.id}", json={"email": "david.chen.updated@example.com"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "davidchen"
    assert body["email"] == "david.chen.updated@example.com"
    assert _parse_time(body["updated_at"]) > _parse_time(body["created_at"])


def test_patch_twice_moves_updated_at_each_time(app: Flask, client: FlaskClient) -> None:
    user = make_user(app)
    first = client.patch(f"/users/{user.id}", json={"username": "renamed"}).get_json()
    second = client.patch(f"/users/{user.id}", json={"username": "renamed"}).get_json()
    assert _parse_time(second["updated_at"]) > _parse_time(first["updated_at"])


def test_delete_user_returns_204_then_404(app: Flask, client: FlaskClient) -> None:
    user = make_user(app)
    response = client.delete(f"/users/{user.id}")
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/users/{user.id}").status_code == 404
    assert client.delete(f"/users/{user.id}").status_code == 404


def test_create_user_with_taken_username_any_case_is_409_naming_field(
    app: Flask, client: FlaskClient
) -> None:
    make_user(app, username="DavidChen", email="a@example.com")
    response = client.post("/users", json={"username": "davidCHEN", "email": "b@example.com"})
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["field"] == "username"


def test_create_user_with_taken_email_any_case_is_409_naming_field(
    app: Flask, client: FlaskClient
) -> None:
    make_user(app, email="Same@Example.com")
    response = client.post("/users", json={"username": "other", "email": "same@EXAMPLE.com"})
    assert response.status_code == 409
    assert response.get_json()["field"] == "email"


def test_update_user_to_taken_username_is_409(app: Flask, client: FlaskClient) -> None:
    make_user(app, username="taken")
    user = make_user(app)
    response = client.patch(f"/users/{user.id}", json={"username": "TAKEN"})
    assert response.status_code == 409
    assert response.get_json()["field"] == "username"
    assert client.get(f"/users/{user.id}").get_json()["username"] == user.username


def test_update_absent_user_is_404(client: FlaskClient) -> None:
    response = client.patch("/users/999999", json={"username": "x"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
