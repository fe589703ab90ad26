"""Groups: names unique whatever their case, scopes, members; a member's access token carries
the union of their groups' scopes, and loses one at once when it is taken away."""

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.config import SETTINGS, Settings
from app.db import notifications
from app.db.session import db
from app.models import ApiKey
from app.services import api_keys, groups, sessions
from app.services.api_keys import ALL_SCOPES
from tests.factories import make_api_key, make_user, set_password
from tests.helpers import assert_problem

PASSWORD = "correct horse battery staple"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _signed_in(app: Flask, client: FlaskClient, name: str = "ann") -> tuple[int, dict[str, str]]:
    user = make_user(app, username=name, email=f"{name}@example.com")
    set_password(app, user.id, PASSWORD)
    response = client.post("/auth/sessions", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201, response.get_data(as_text=True)
    return user.id, _bearer(response.get_json()["access_token"])


def _group(client: FlaskClient, name: str, scopes: list[str]) -> dict[str, Any]:
    response = client.post("/groups", json={"name": name, "scopes": scopes})
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_a_group_is_created_read_listed_changed_and_deleted(client: FlaskClient) -> None:
    created = _group(client, "Editors", ["posts:write", "posts:read", "posts:read"])
    assert created["name"] == "Editors"
    # Repeats dropped, in the scopes' own order.
    assert created["scopes"] == ["posts:read", "posts:write"]
    location = f"/groups/{created['id']}"
    response = client.get(location)
    assert response.status_code == 200
    assert response.get_json() == created
    assert client.get("/groups").get_json() == {"items": [created], "next_cursor": None}

    changed = client.patch(location, json={"name": "writers", "scopes": ["scim"]})
    assert changed.status_code == 200
    assert changed.get_json()["name"] == "writers"
    assert changed.get_json()["scopes"] == ["scim"]

    assert client.delete(location).status_code == 204
    assert_problem(client.get(location), 404)
    assert_problem(client.delete(location), 404)
    assert_problem(client.patch(location, json={"scopes": []}), 404)


def test_group_names_are_unique_whatever_their_letter_case(client: FlaskClient) -> None:
    _group(client, "Admins", ["users:admin"])
    other = _group(client, "readers", ["users:read"])

    problem = assert_problem(client.post("/groups", json={"name": "ADMINS", "scopes": []}), 409)
    assert problem["field"] == "name"
    renamed = client.patch(f"/groups/{other['id']}", json={"name": "admins"})
    assert assert_problem(renamed, 409)["field"] == "name"
    assert [g["name"] for g in client.get("/groups").get_json()["items"]] == ["Admins", "readers"]


def test_an_unknown_scope_is_refused(client: FlaskClient) -> None:
    assert_problem(client.post("/groups", json={"name": "x", "scopes": ["root"]}), 422)


def test_groups_are_managed_with_users_admin_only(app: Flask, client: FlaskClient) -> None:
    group = _group(client, "staff", ["users:read"])
    user = make_user(app)
    token = make_api_key(app, [s for s in ALL_SCOPES if s != "users:admin"])
    other = app.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    member = f"/groups/{group['id']}/members/{user.id}"
    for response in [
        other.post("/groups", json={"name": "x", "scopes": []}),
        other.get("/groups"),
        other.get(f"/groups/{group['id']}"),
        other.patch(f"/groups/{group['id']}", json={"scopes": []}),
        other.delete(f"/groups/{group['id']}"),
        other.get(f"/groups/{group['id']}/members"),
        other.put(member),
        other.delete(member),
    ]:
        assert assert_problem(response, 403)["scopes"] == ["users:admin"]
    assert client.get(f"/groups/{group['id']}").get_json()["scopes"] == ["users:read"]


def test_api_keys_take_the_new_scopes(app: Flask) -> None:
    new = ["users:admin", "audit:read", "webhooks:admin", "scim"]
    assert set(new) <= set(ALL_SCOPES)
    with app.app_context():
        key, token = api_keys.create_api_key("admin", new)  # type: ignore[arg-type]
        db.session.commit()
        info = api_keys.authenticate(token)
        assert info is not None
        assert set(info.scopes) == set(new)
        stored = db.session.execute(select(ApiKey.scopes).where(ApiKey.id == key.id)).scalar()
        assert sorted(stored or []) == sorted(new)


def test_members_are_added_listed_and_removed(app: Flask, client: FlaskClient) -> None:
    group = _group(client, "staff", [])
    ann = make_user(app, username="ann", email="ann@example.com")
    bob = make_user(app, username="bob", email="bob@example.com")
    members = f"/groups/{group['id']}/members"

    for user_id in (bob.id, ann.id, ann.id):  # a second PUT changes nothing
        assert client.put(f"{members}/{user_id}").status_code == 204
    page = client.get(members).get_json()
    assert [u["username"] for u in page["items"]] == ["ann", "bob"]
    assert set(page["items"][0]) == {
        "id",
        "username",
        "email",
        "active",
        "created_at",
        "updated_at",
    }
    first = client.get(f"{members}?limit=1").get_json()
    assert [u["username"] for u in first["items"]] == ["ann"]
    rest = client.get(f"{members}?limit=1&cursor={first['next_cursor']}").get_json()
    assert [u["username"] for u in rest["items"]] == ["bob"]

    assert client.delete(f"{members}/{ann.id}").status_code == 204
    assert client.delete(f"{members}/{ann.id}").status_code == 204  # not a member: the same
    assert [u["username"] for u in client.get(members).get_json()["items"]] == ["bob"]

    # Deleting a user ends their memberships.
    assert client.delete(f"/users/{bob.id}").status_code == 204
    assert client.get(members).get_json()["items"] == []


def test_a_membership_of_what_does_not_exist_is_a_404(app: Flask, client: FlaskClient) -> None:
    group = _group(client, "staff", [])
    user = make_user(app)
    assert_problem(client.put(f"/groups/{group['id']}/members/999999"), 404)
    assert_problem(client.put(f"/groups/999999/members/{user.id}"), 404)
    assert_problem(client.delete(f"/groups/999999/members/{user.id}"), 404)
    assert_problem(client.get("/groups/999999/members"), 404)
    assert client.get(f"/groups/{group['id']}/members").get_json()["items"] == []


def test_a_members_token_has_the_union_of_their_groups_scopes(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    user_id, headers = _signed_in(app, anonymous_client)
    readers = _group(client, "readers", ["users:read", "posts:read"])
    writers = _group(client, "writers", ["posts:read", "posts:write"])
    _group(client, "others", ["users:admin"])
    # Signed in with no group: no scope (and the session is now cached without one).
    assert_problem(anonymous_client.get(f"/users/{user_id}", headers=headers), 403)

    for group in (readers, writers):
        assert client.put(f"/groups/{group['id']}/members/{user_id}").status_code == 204

    whoami = anonymous_client.get("/auth/whoami", headers=headers).get_json()
    assert whoami["scopes"] == ["users:read", "posts:read", "posts:write"]
    assert anonymous_client.get(f"/users/{user_id}", headers=headers).status_code == 200
    assert_problem(anonymous_client.get("/groups", headers=headers), 403)


def test_a_removed_member_loses_the_scope_at_once(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    user_id, headers = _signed_in(app, anonymous_client)
    group = _group(client, "readers", ["users:read"])
    member = f"/groups/{group['id']}/members/{user_id}"
    assert client.put(member).status_code == 204
    assert anonymous_client.get(f"/users/{user_id}", headers=headers).status_code == 200

    assert client.delete(member).status_code == 204

    # The very next request, well inside the 10-second cache of verified tokens.
    assert_problem(anonymous_client.get(f"/users/{user_id}", headers=headers), 403)


def test_a_groups_changed_or_deleted_scopes_reach_its_members_at_once(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    user_id, headers = _signed_in(app, anonymous_client)
    group = _group(client, "readers", ["users:read", "posts:read"])
    assert client.put(f"/groups/{group['id']}/members/{user_id}").status_code == 204
    assert anonymous_client.get(f"/users/{user_id}", headers=headers).status_code == 200

    assert (
        client.patch(f"/groups/{group['id']}", json={"scopes": ["posts:read"]}).status_code == 200
    )
    assert_problem(anonymous_client.get(f"/users/{user_id}", headers=headers), 403)
    assert anonymous_client.get("/posts", headers=headers).status_code == 200

    assert client.delete(f"/groups/{group['id']}").status_code == 204
    assert_problem(anonymous_client.get("/posts", headers=headers), 403)


def test_an_admin_member_manages_groups_with_their_access_token(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    user_id, headers = _signed_in(app, anonymous_client)
    admins = _group(client, "admins", ["users:admin"])
    assert client.put(f"/groups/{admins['id']}/members/{user_id}").status_code == 204

    response = anonymous_client.post(
        "/groups", json={"name": "readers", "scopes": ["users:read"]}, headers=headers
    )
    assert response.status_code == 201
    readers = response.get_json()["id"]
    member = f"/groups/{readers}/members/{user_id}"
    assert anonymous_client.put(member, headers=headers).status_code == 204
    assert anonymous_client.get(f"/users/{user_id}", headers=headers).status_code == 200


@pytest.mark.postgresql_only("LISTEN/NOTIFY is PostgreSQL's")
def test_membership_and_scope_changes_are_announced_to_every_process(
    app: Flask, client: FlaskClient
) -> None:
    # Every process listens on this channel and forgets the cached sessions of user:<id>.
    settings: Settings = app.extensions[SETTINGS]
    heard: list[str] = []
    connected = threading.Event()
    got = threading.Condition()

    def on_message(payload: str) -> None:
        with got:
            heard.append(payload)
            got.notify_all()

    notifications.listen(settings, api_keys.REVOKED_CHANNEL, on_message, connected.set)
    assert connected.wait(10), "the listener never connected"
    ann = make_user(app, username="ann", email="ann@example.com")
    bob = make_user(app, username="bob", email="bob@example.com")
    group = _group(client, "staff", [])
    members = f"/groups/{group['id']}/members"
    assert client.put(f"{members}/{ann.id}").status_code == 204
    assert client.put(f"{members}/{bob.id}").status_code == 204
    assert client.delete(f"{members}/{bob.id}").status_code == 204
    assert (
        client.patch(f"/groups/{group['id']}", json={"scopes": ["posts:read"]}).status_code == 200
    )
    expected = [f"user:{ann.id}", f"user:{bob.id}", f"user:{bob.id}", f"user:{ann.id}"]
    with got:
        assert got.wait_for(lambda: len(heard) >= len(expected), timeout=5), heard
    assert heard == expected


def test_a_membership_put_takes_no_body(app: Flask, client: FlaskClient) -> None:
    group = _group(client, "staff", [])
    user = make_user(app)
    member = f"/groups/{group['id']}/members/{user.id}"
    assert_problem(client.put(member, json={"role": "owner"}), 400)
    assert client.get(f"/groups/{group['id']}/members").get_json()["items"] == []
    assert client.put(member).status_code == 204


def test_a_token_looked_up_before_the_removal_commits_is_forgotten_at_commit(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    user_id, headers = _signed_in(app, anonymous_client)
    group = _group(client, "readers", ["users:read"])
    assert client.put(f"/groups/{group['id']}/members/{user_id}").status_code == 204
    token = headers["Authorization"].removeprefix("Bearer ")
    with app.app_context():
        groups.remove_member(group["id"], user_id)
        # Another request of this process, before the commit, still sees the membership and
        # caches the token with its scope.
        before = sessions.authenticate(token)
        assert before is not None
        assert before.scopes == ("users:read",)
        db.session.commit()
        after = sessions.authenticate(token)
        assert after is not None
        assert after.scopes == ()
