"""Conditional requests on /users/{id} and /posts/{id}: strong ETags, 304 on If-None-Match,
412 on a stale If-Match with nothing changed, and no lost update under concurrent writers."""

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_post, make_user
from tests.helpers import LiveServer, assert_problem


def _user_url(app: Flask) -> str:
    return f"/users/{make_user(app).id}"


def _post_url(app: Flask) -> str:
    return f"/posts/{make_post(app, make_user(app)).id}"


# Each resource: how to make one, a change to it, and another change.
RESOURCES: dict[str, tuple[Callable[[Flask], str], dict[str, str], dict[str, str]]] = {
    "user": (_user_url, {"email": "changed@example.com"}, {"email": "again@example.com"}),
    "post": (_post_url, {"title": "Changed"}, {"title": "Again"}),
}


@pytest.fixture(params=sorted(RESOURCES))
def resource(request: pytest.FixtureRequest, app: Flask) -> tuple[str, dict[str, str]]:
    """The URL of a fresh user or post, and a change to it."""
    make, change, _ = RESOURCES[request.param]
    return make(app), change


def test_get_has_a_strong_etag_and_if_none_match_gives_304(
    client: FlaskClient, resource: tuple[str, dict[str, str]]
) -> None:
    url, _ = resource
    first = client.get(url)
    tag = first.headers["ETag"]
    assert tag.startswith('"')  # strong: no W/ prefix

    again = client.get(url, headers={"If-None-Match": tag})
    weakly = client.get(url, headers={"If-None-Match": f'"other", W/{tag}'})
    other = client.get(url, headers={"If-None-Match": '"v999"'})

    assert (again.status_code, again.get_data(), again.headers["ETag"]) == (304, b"", tag)
    assert weakly.status_code == 304  # If-None-Match compares weakly (RFC 9110 13.1.2)
    assert other.status_code == 200
    assert other.get_json() == first.get_json()


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_write_with_current_if_match_succeeds_and_gives_the_new_etag(
    client: FlaskClient, resource: tuple[str, dict[str, str]], method: str
) -> None:
    url, change = resource
    tag = client.get(url).headers["ETag"]

    written = client.open(url, method=method, json=change, headers={"If-Match": tag})

    assert written.status_code == 200, written.get_json()
    assert written.headers["ETag"] != tag
    read = client.get(url)
    assert read.headers["ETag"] == written.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 200


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_stale_if_match_is_412_and_changes_nothing(
    client: FlaskClient, resource: tuple[str, dict[str, str]], method: str
) -> None:
    url, change = resource
    stale = client.get(url).headers["ETag"]
    assert client.patch(url, json=change, headers={"If-Match": stale}).status_code == 200
    before = client.get(url)

    kind = "user" if url.startswith("/users") else "post"
    body = None if method == "DELETE" else RESOURCES[kind][2]
    refused = client.open(url, method=method, json=body, headers={"If-Match": stale})

    assert_problem(refused, 412)
    after = client.get(url)
    assert after.status_code == 200
    assert after.get_json() == before.get_json()
    assert after.headers["ETag"] == before.headers["ETag"]


@pytest.mark.parametrize("if_match", ['W/"v1"', '"nonsense"', '"v1.1.1"', "junk"])
def test_weak_or_foreign_if_match_never_matches(
    client: FlaskClient, resource: tuple[str, dict[str, str]], if_match: str
) -> None:
    url, change = resource

    refused = client.patch(url, json=change, headers={"If-Match": if_match})

    assert_problem(refused, 412)


def test_if_match_star_or_a_list_holding_the_current_tag_matches(
    client: FlaskClient, resource: tuple[str, dict[str, str]]
) -> None:
    url, change = resource
    tag = client.get(url).headers["ETag"]

    listed = client.patch(url, json=change, headers={"If-Match": f'"v999", {tag}'})
    star = client.patch(url, json=change, headers={"If-Match": "*"})

    assert (listed.status_code, star.status_code) == (200, 200)


def test_if_match_on_a_missing_resource_is_404(client: FlaskClient) -> None:
    assert_problem(
        client.patch("/users/999999", json={"email": "a@b.io"}, headers={"If-Match": '"v1"'}), 404
    )
    assert_problem(client.delete("/posts/999999", headers={"If-Match": '"v1.1"'}), 404)


def test_post_etag_changes_when_its_author_is_renamed(app: Flask, client: FlaskClient) -> None:
    author = make_user(app)
    url = f"/posts/{make_post(app, author).id}"
    tag = client.get(url).headers["ETag"]

    client.patch(f"/users/{author.id}", json={"username": "renamed"})

    renamed = client.get(url, headers={"If-None-Match": tag})
    assert renamed.status_code == 200
    assert renamed.get_json()["author"]["username"] == "renamed"
    assert_problem(client.patch(url, json={"title": "x"}, headers={"If-Match": tag}), 412)


def test_creates_carry_the_etag_a_get_gives(client: FlaskClient) -> None:
    user = client.post("/users", json={"username": "ada", "email": "ada@example.com"})
    post = client.post(f"/users/{user.get_json()['id']}/posts", json={"title": "t", "body": "b"})

    assert user.headers["ETag"] == client.get(user.headers["Location"]).headers["ETag"]
    assert post.headers["ETag"] == client.get(post.headers["Location"]).headers["ETag"]


WRITERS = 20


@pytest.mark.live
def test_concurrent_patches_with_one_etag_make_exactly_one_change(
    api_token: str, request: pytest.FixtureRequest
) -> None:
    server: LiveServer = request.getfixturevalue("live_server")
    headers = {"Authorization": f"Bearer {api_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as http:
        created = http.post("/users", json={"username": "race", "email": "race@example.com"})
        url = created.headers["Location"]
        tag = created.headers["ETag"]
        start = threading.Barrier(WRITERS)

        def write(n: int) -> int:
            start.wait()
            body = {"email": f"writer{n}@example.com"}
            return http.patch(url, json=body, headers={"If-Match": tag}).status_code

        with ThreadPoolExecutor(WRITERS) as pool:
            statuses = Counter(pool.map(write, range(WRITERS)))
        final = http.get(url)

    assert statuses == {200: 1, 412: WRITERS - 1}, f"{statuses}\n{server.log()}"
    assert final.json()["email"].startswith("writer")
    assert final.headers["ETag"] != tag
