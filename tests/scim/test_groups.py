"""SCIM Groups: the same groups as /groups, and their members moved by PATCH."""

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_user
from tests.helpers import counting_statements
from tests.scim.test_users import PATCH_SCHEMA, scim_client, scim_error  # noqa: F401 - fixture

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _group(name: str, member_ids: list[int]) -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "externalId": f"ext-{name}",
        "members": [{"value": str(i)} for i in member_ids],
    }


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def _members(client: FlaskClient, group_id: str) -> list[int]:
    body = client.get(f"/scim/v2/Groups/{group_id}").get_json()
    return sorted(int(m["value"]) for m in body.get("members", []))


def test_create_read_and_the_same_group_in_groups(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
    client: FlaskClient,
) -> None:
    ann = make_user(app, username="ann").id
    ben = make_user(app, username="ben").id
    response = scim_client.post("/scim/v2/Groups", json=_group("staff", [ann, ben]))
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert created["displayName"] == "staff"
    assert sorted(int(m["value"]) for m in created["members"]) == sorted([ann, ben])
    assert created["members"][0]["$ref"].endswith(f"/scim/v2/Users/{ann}")
    assert created["meta"]["version"] == response.headers["ETag"]

    same = client.get(f"/groups/{created['id']}").get_json()
    assert (same["name"], same["scopes"]) == ("staff", [])
    listed = client.get(f"/groups/{created['id']}/members").get_json()
    assert sorted(u["id"] for u in listed["items"]) == [ann, ben]


def test_patch_moves_members_between_groups(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    ids = [make_user(app, username=f"m{n}").id for n in range(4)]
    red = scim_client.post("/scim/v2/Groups", json=_group("red", ids[:2])).get_json()["id"]
    blue = scim_client.post("/scim/v2/Groups", json=_group("blue", ids[2:])).get_json()["id"]

    moved = ids[0]
    out = _patch({"op": "remove", "path": f'members[value eq "{moved}"]'})
    into = _patch({"op": "add", "path": "members", "value": [{"value": str(moved)}]})
    assert scim_client.patch(f"/scim/v2/Groups/{red}", json=out).status_code == 204
    assert scim_client.patch(f"/scim/v2/Groups/{blue}", json=into).status_code == 204
    assert _members(scim_client, red) == [ids[1]]
    assert _members(scim_client, blue) == sorted([moved, *ids[2:]])

    # Entra ID's form: no path, the value names the attributes.
    renamed = _patch({"op": "replace", "value": {"displayName": "crimson"}})
    assert scim_client.patch(f"/scim/v2/Groups/{red}", json=renamed).status_code == 204
    assert scim_client.get(f"/scim/v2/Groups/{red}").get_json()["displayName"] == "crimson"
    cleared = _patch({"op": "remove", "path": "members"})
    assert scim_client.patch(f"/scim/v2/Groups/{blue}", json=cleared).status_code == 204
    assert _members(scim_client, blue) == []


def test_filters_on_groups(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    member = make_user(app, username="zoe").id
    scim_client.post("/scim/v2/Groups", json=_group("Admins-EU", [member]))
    scim_client.post("/scim/v2/Groups", json=_group("admins-us", []))

    def names(expression: str) -> list[str]:
        body = scim_client.get("/scim/v2/Groups", query_string={"filter": expression}).get_json()
        return sorted(g["displayName"] for g in body.get("Resources", []))

    assert names('displayName eq "admins-eu"') == ["Admins-EU"]
    assert names('displayName sw "ADMINS"') == ["Admins-EU", "admins-us"]
    assert names(f'members.value eq "{member}"') == ["Admins-EU"]
    assert names(f'members eq "{member}"') == ["Admins-EU"]
    assert names('externalId eq "ext-admins-us"') == ["admins-us"]


def test_adding_a_member_reads_none_of_the_others(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    ids = [make_user(app, username=f"big{n}").id for n in range(30)]
    group = scim_client.post("/scim/v2/Groups", json=_group("big", ids[:-1])).get_json()["id"]
    with counting_statements(app) as sent:
        add = _patch({"op": "add", "path": "members", "value": [{"value": str(ids[-1])}]})
        assert scim_client.patch(f"/scim/v2/Groups/{group}", json=add).status_code == 204
    member_reads = [s for s in sent if "group_member" in s and s.lstrip().startswith("SELECT")]
    assert member_reads == [], member_reads


def test_taken_display_name_is_a_uniqueness_409_and_stale_version_a_412(
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    first = scim_client.post("/scim/v2/Groups", json=_group("Team", []))
    scim_error(scim_client.post("/scim/v2/Groups", json=_group("TEAM", [])), 409, "uniqueness")
    url = f"/scim/v2/Groups/{first.get_json()['id']}"
    rename = _patch({"op": "replace", "path": "displayName", "value": "Team 2"})
    moved = scim_client.patch(url, json=rename)
    assert moved.status_code == 204
    stale = scim_client.patch(url, json=rename, headers={"If-Match": first.headers["ETag"]})
    scim_error(stale, 412)
    assert scim_client.delete(url, headers={"If-Match": moved.headers["ETag"]}).status_code == 204
    scim_error(scim_client.get(url), 404)


def test_unknown_member_is_refused(scim_client: FlaskClient) -> None:  # noqa: F811
    response = scim_client.post(
        "/scim/v2/Groups", json=_group("ghosts", []) | {"members": [{"value": "abc"}]}
    )
    scim_error(response, 400, "invalidValue")


def test_a_member_that_is_no_user_is_refused(scim_client: FlaskClient) -> None:  # noqa: F811
    scim_error(scim_client.post("/scim/v2/Groups", json=_group("nobody", [999999])), 400)
