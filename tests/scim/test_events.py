"""SCIM writes are changes like any other: each records its change events, with the API key
as the actor, in the write's own transaction."""

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_api_key, make_user
from tests.scim.test_users import PATCH_SCHEMA, scim_client, user_body  # noqa: F401 - fixture


def _events(app: Flask, **params: Any) -> list[dict[str, Any]]:
    reader = app.test_client()
    reader.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(app, ['audit:read'])}"
    response = reader.get("/audit-events", query_string={"limit": 100, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def test_user_lifecycle_through_scim_is_recorded(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    created = scim_client.post(
        "/scim/v2/Users", json=user_body("evented", password="a long secret")
    )
    user_id = created.get_json()["id"]
    off = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    assert scim_client.patch(f"/scim/v2/Users/{user_id}", json=off).status_code == 200
    assert scim_client.delete(f"/scim/v2/Users/{user_id}").status_code == 204

    recorded = _events(app, resource_type="user", resource_id=user_id)
    types = sorted(event["type"] for event in recorded)
    assert types == ["user.created", "user.deactivated", "user.deleted", "user.password_changed"]
    assert {event["actor"]["kind"] for event in recorded} == {"api_key"}
    assert all("a long secret" not in str(event) for event in recorded)


def test_refused_scim_writes_record_nothing(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    make_user(app, username="taken", email="taken@example.com")
    before = len(_events(app, resource_type="user"))
    assert scim_client.post("/scim/v2/Users", json=user_body("TAKEN")).status_code == 409
    assert scim_client.post("/scim/v2/Users", json=user_body("x", title="t")).status_code == 400
    assert len(_events(app, resource_type="user")) == before


def test_group_members_moved_by_scim_are_recorded(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    one, two = make_user(app).id, make_user(app).id
    group = scim_client.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "audited",
            "members": [{"value": str(one)}],
        },
    ).get_json()["id"]
    move = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": str(two)}, {"value": str(one)}]},
            {"op": "remove", "path": f'members[value eq "{one}"]'},
        ],
    }
    assert scim_client.patch(f"/scim/v2/Groups/{group}", json=move).status_code == 204
    recorded = _events(app, resource_type="group", resource_id=group)
    described = sorted((e["type"], str(e["changes"].get("user_id"))) for e in recorded)
    assert described == sorted(
        [
            ("group.created", "None"),
            ("group.member_added", f"[None, {one}]"),
            ("group.member_added", f"[None, {two}]"),
            ("group.member_removed", f"[{one}, None]"),
        ]
    )
