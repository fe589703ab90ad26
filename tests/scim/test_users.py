"""SCIM Users: the same rows as /users, provisioned as an identity provider does."""

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_api_key, make_user

if TYPE_CHECKING:
    from tests.helpers import LiveServer

SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def scim_client(app: Flask) -> FlaskClient:
    """A client with an API key of the scim scope only."""
    test_client = app.test_client()
    token = make_api_key(app, ["scim"])
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return test_client


def user_body(name: str, **extra: Any) -> dict[str, Any]:
    """A SCIM user as an identity provider sends it."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": name,
        "name": {"givenName": "Babs", "familyName": "Jensen"},
        "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
        "active": True,
        "externalId": f"ext-{name}",
        **extra,
    }


def scim_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """Check a SCIM error and return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == SCIM
    body: dict[str, Any] = response.get_json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def test_create_is_the_same_row_as_users(scim_client: FlaskClient, client: FlaskClient) -> None:
    response = scim_client.post("/scim/v2/Users", json=user_body("bjensen"), content_type=SCIM)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.mimetype == SCIM
    created = response.get_json()
    assert created["userName"] == "bjensen"
    assert created["name"] == {"givenName": "Babs", "familyName": "Jensen"}
    assert created["emails"] == [{"value": "bjensen@example.com", "type": "work"}]
    assert created["externalId"] == "ext-bjensen"
    assert created["meta"]["resourceType"] == "User"
    assert created["meta"]["version"] == response.headers["ETag"]
    assert response.headers["Location"].endswith(f"/scim/v2/Users/{created['id']}")

    same = client.get(f"/users/{created['id']}").get_json()
    assert (same["username"], same["email"], same["active"]) == (
        "bjensen",
        "bjensen@example.com",
        True,
    )


def test_taken_username_in_any_case_is_a_uniqueness_409(
    app: Flask, scim_client: FlaskClient
) -> None:
    make_user(app, username="Taken", email="taken@example.com")
    body = user_body("TAKEN")
    response = scim_client.post("/scim/v2/Users", json=body, content_type=SCIM)
    scim_error(response, 409, "uniqueness")


def test_attributes_not_stored_are_refused_not_lost(scim_client: FlaskClient) -> None:
    body = user_body("phoned", phoneNumbers=[{"value": "555-0100", "type": "work"}])
    response = scim_client.post("/scim/v2/Users", json=body, content_type=SCIM)
    detail = scim_error(response, 400, "invalidValue")["detail"]
    assert "phone_numbers" in detail
    unknown = user_body("odd", favouriteColour="blue")
    scim_error(scim_client.post("/scim/v2/Users", json=unknown, content_type=SCIM), 400)


def test_get_put_and_delete(scim_client: FlaskClient) -> None:
    created = scim_client.post("/scim/v2/Users", json=user_body("carol")).get_json()
    url = f"/scim/v2/Users/{created['id']}"
    got = scim_client.get(url)
    assert got.status_code == 200
    assert got.get_json() == created

    replaced = scim_client.put(url, json=user_body("carol2", displayName="Carol"))
    assert replaced.status_code == 200, replaced.get_data(as_text=True)
    assert replaced.get_json()["userName"] == "carol2"
    assert replaced.get_json()["displayName"] == "Carol"
    assert replaced.headers["ETag"] != got.headers["ETag"]

    # A stale version is a 412; the current one works.
    stale = scim_client.put(
        url, json=user_body("carol3"), headers={"If-Match": got.headers["ETag"]}
    )
    scim_error(stale, 412)
    current = {"If-Match": replaced.headers["ETag"]}
    assert scim_client.delete(url, headers=current).status_code == 204
    scim_error(scim_client.get(url), 404)


def test_patch_deactivates_and_revokes_sessions(
    app: Flask, scim_client: FlaskClient, anonymous_client: FlaskClient
) -> None:
    created = scim_client.post(
        "/scim/v2/Users", json=user_body("dave", password="correct horse battery")
    ).get_json()
    signed_in = anonymous_client.post(
        "/auth/sessions", json={"username": "dave", "password": "correct horse battery"}
    )
    assert signed_in.status_code == 201, signed_in.get_data(as_text=True)
    token = signed_in.get_json()["access_token"]
    assert (
        anonymous_client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )

    patch = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [
            {"op": "replace", "path": "active", "value": False},
            {"op": "add", "path": "displayName", "value": "Dave"},
        ],
    }
    patched = scim_client.patch(f"/scim/v2/Users/{created['id']}", json=patch)
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert patched.get_json()["active"] is False
    assert patched.get_json()["displayName"] == "Dave"
    assert (
        anonymous_client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


def test_password_is_never_returned(scim_client: FlaskClient) -> None:
    response = scim_client.post(
        "/scim/v2/Users", json=user_body("erin", password="s3cret-but-long")
    )
    assert response.status_code == 201
    assert "s3cret-but-long" not in response.get_data(as_text=True)
    assert "password" not in response.get_json()
    weak = scim_client.post("/scim/v2/Users", json=user_body("frank", password="password"))
    body = scim_error(weak, 400)
    assert "password" not in body["detail"] or "common" in body["detail"]


def test_scope_and_credentials(app: Flask, client: FlaskClient) -> None:
    anonymous = app.test_client()
    response = anonymous.get("/scim/v2/Users")
    scim_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    no_scim = app.test_client()
    no_scim.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(app, ['users:admin'])}"
    scim_error(no_scim.get("/scim/v2/Users"), 403)
    # As everywhere: a path that is none is a 404 and a method not taken a 405, whatever the
    # credentials; here in SCIM's schema.
    scim_error(anonymous.get("/scim/v2/Nothing"), 404)
    not_allowed = anonymous.delete("/scim/v2/ServiceProviderConfig")
    scim_error(not_allowed, 405)
    assert "GET" in not_allowed.headers["Allow"]


def test_unknown_endpoint_is_a_scim_404(scim_client: FlaskClient) -> None:
    scim_error(scim_client.get("/scim/v2/Nothing"), 404)


@pytest.mark.live
def test_concurrent_creates_of_one_name_give_one_201_and_409s(
    app: Flask, live_server: "LiveServer"
) -> None:
    token = make_api_key(app, ["scim"])
    body = user_body("racer")

    def create(n: int) -> int:
        variant = {**body, "userName": "Racer" if n % 2 else "racer"}
        variant["emails"] = [{"value": f"racer{n}@example.com"}]
        response = httpx.post(
            f"{live_server.url}/scim/v2/Users",
            json=variant,
            headers={"Authorization": f"Bearer {token}", "Content-Type": SCIM},
            timeout=30,
        )
        return response.status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(create, range(10)))
    assert statuses == [201] + [409] * 9
