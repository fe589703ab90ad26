"""The users contract: the tutorial's flow and its documented bodies."""

from datetime import datetime, timedelta

import pytest
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


@pytest.mark.parametrize(
    "change", [{"email": "moved@example.com"}, {"active": False}, {"username": "same"}]
)
def test_patch_answers_the_row_as_stored(
    app: Flask, client: FlaskClient, change: dict[str, object]
) -> None:
    # On MariaDB the answer is the row before with its changes, not a read back.
    user = make_user(app, username="same")
    patched = client.patch(f"/users/{user.id}", json=change)
    stored = client.get(f"/users/{user.id}")
    assert patched.status_code == 200
    assert patched.get_json() == stored.get_json()
    assert patched.headers["ETag"] == stored.headers["ETag"]
    assert _parse_time(stored.get_json()["updated_at"]) > _parse_time(user.updated_at.isoformat())


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


def test_timestamps_are_utc_with_microseconds(client: FlaskClient) -> None:
    # Set by the database: six digits on every backend (MariaDB's DATETIME keeps none unless
    # told), so two writes in one second still order.
    created = [
        client.post("/users", json={"username": f"tick{i}", "email": f"tick{i}@example.com"})
        for i in range(5)
    ]
    times = [_parse_time(r.get_json()["created_at"]) for r in created]
    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert any(t.microsecond for t in times), times
    assert times == sorted(times)


@pytest.mark.backends("postgresql", "mysql", reason="SQLite's lower() folds ASCII letters only")
def test_uniqueness_folds_the_case_of_accented_letters_not_their_accents(
    client: FlaskClient,
) -> None:
    assert client.post("/users", json={"username": "Émile", "email": "E1@x.io"}).status_code == 201
    taken = client.post("/users", json={"username": "éMILE", "email": "e2@x.io"})
    assert taken.status_code == 409
    assert taken.get_json()["field"] == "username"
    # Accents are letters of their own, as lower() keeps them: "Emile" is someone else.
    assert client.post("/users", json={"username": "Emile", "email": "e3@x.io"}).status_code == 201
    assert client.post("/users", json={"username": "x", "email": "e1@X.IO"}).status_code == 409
    found = client.get("/users", query_string={"username": "ÉMILE"}).get_json()["items"]
    assert [u["username"] for u in found] == ["Émile"]


def test_a_deleted_users_id_and_etag_are_never_anyone_elses(client: FlaskClient) -> None:
    # The tutorial's session: create, delete, create again. On SQLite the second user once
    # got the first one's id, at the same version, so a cached ETag matched a new person.
    first = client.post("/users", json={"username": "davidchen", "email": "david@example.com"})
    old_url, old_tag = first.headers["Location"], first.headers["ETag"]
    assert client.delete(old_url).status_code == 204

    second = client.post("/users", json={"username": "maria", "email": "maria@example.com"})

    assert second.headers["Location"] != old_url
    assert second.get_json()["id"] > first.get_json()["id"]
    assert client.get(old_url, headers={"If-None-Match": old_tag}).status_code == 404
    posts = client.post(f"{second.headers['Location']}/posts", json={"title": "t", "body": "b"})
    assert client.delete(f"/posts/{posts.get_json()['id']}").status_code == 204
    again = client.post(f"{second.headers['Location']}/posts", json={"title": "t", "body": "b"})
    assert again.get_json()["id"] > posts.get_json()["id"]
