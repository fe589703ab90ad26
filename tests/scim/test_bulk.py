"""SCIM Bulk: operations in order, each on its own, with bulkId references."""

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.scim.test_users import scim_client, scim_error, user_body  # noqa: F401 - fixture

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _bulk(client: FlaskClient, *operations: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    response = client.post(
        "/scim/v2/Bulk", json={"schemas": [BULK], "Operations": list(operations), **extra}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    outcomes: list[dict[str, Any]] = response.get_json()["Operations"]
    return outcomes


def test_bulk_creates_users_and_a_group_that_refers_to_them(
    scim_client: FlaskClient,  # noqa: F811
    client: FlaskClient,
) -> None:
    outcomes = _bulk(
        scim_client,
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("bulk1")},
        {"method": "POST", "path": "/Users", "bulkId": "u2", "data": user_body("bulk2")},
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g",
            "data": {
                "schemas": [GROUP],
                "displayName": "bulked",
                "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}],
            },
        },
    )
    assert [o["status"] for o in outcomes] == ["201", "201", "201"]
    assert [o["bulkId"] for o in outcomes] == ["u1", "u2", "g"]
    group_id = outcomes[2]["location"].rsplit("/", 1)[1]
    members = client.get(f"/groups/{group_id}/members").get_json()["items"]
    assert sorted(m["username"] for m in members) == ["bulk1", "bulk2"]


def test_each_operation_stands_alone_and_fail_on_errors_stops(
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    outcomes = _bulk(
        scim_client,
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": user_body("dup")},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": user_body("DUP")},
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": user_body("fine")},
        {"method": "DELETE", "path": "/Users/999999"},
        {"method": "POST", "path": "/Users", "bulkId": "d", "data": user_body("never")},
        failOnErrors=2,
    )
    assert [o["status"] for o in outcomes] == ["201", "409", "201", "404"]
    assert outcomes[1]["response"]["scimType"] == "uniqueness"
    names = scim_client.get("/scim/v2/Users", query_string={"filter": 'userName eq "never"'})
    assert names.get_json()["totalResults"] == 0


def test_patch_put_delete_and_versions_in_bulk(scim_client: FlaskClient) -> None:  # noqa: F811
    made = scim_client.post("/scim/v2/Users", json=user_body("versioned"))
    path = f"/Users/{made.get_json()['id']}"
    stale = made.headers["ETag"]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "V"}],
    }
    outcomes = _bulk(
        scim_client,
        {"method": "PATCH", "path": path, "version": stale, "data": patch},
        {"method": "PUT", "path": path, "version": stale, "data": user_body("versioned")},
        {"method": "DELETE", "path": path},
    )
    assert [o["status"] for o in outcomes] == ["200", "412", "204"]
    assert outcomes[0]["version"] != stale


def test_unresolved_bulk_id_and_bad_paths(scim_client: FlaskClient) -> None:  # noqa: F811
    group = {"schemas": [GROUP], "displayName": "g", "members": [{"value": "bulkId:nope"}]}
    outcomes = _bulk(
        scim_client,
        {"method": "POST", "path": "/Groups", "data": group},
        {"method": "POST", "path": "/Users/1", "data": user_body("x")},
        {"method": "GET", "path": "/Users/1"},
    )
    assert [o["status"] for o in outcomes] == ["409", "400", "405"]


def test_too_many_operations_is_refused_whole(app: Flask, scim_client: FlaskClient) -> None:  # noqa: F811
    operation = {"method": "DELETE", "path": "/Users/1"}
    response = scim_client.post(
        "/scim/v2/Bulk", json={"schemas": [BULK], "Operations": [operation] * 1001}
    )
    scim_error(response, 413)
    config = scim_client.get("/scim/v2/ServiceProviderConfig").get_json()
    assert config["bulk"] == {
        "supported": True,
        "maxOperations": 1000,
        "maxPayloadSize": app.config["MAX_CONTENT_LENGTH"],
    }
