"""Conditional requests on /users/{id} and /posts/{id}: strong ETags, 304 on If-None-Match,
412 on a stale If-Match with nothing changed, and no lost update under concurrent writers;
If-None-Match on writes (RFC 9110 13.1.2), If-Match on reads, both in 13.2.2's order, and
both headers bounded."""

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table, update
from werkzeug.datastructures import ETags
from werkzeug.http import parse_etags
from werkzeug.test import TestResponse
from werkzeug.utils import import_string

from app.api.conditional import MAX_CONDITION_BYTES, MAX_CONDITION_TAGS
from app.db.session import db
from app.models import Post, User
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


# The bounds (app/api/conditional.py): past them a 400, before any parsing.


def _unchanged(client: FlaskClient, url: str, before: TestResponse) -> None:
    after = client.get(url)
    assert after.status_code == 200
    assert after.get_json() == before.get_json()
    assert after.headers["ETag"] == before.headers["ETag"]


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every If-Match or If-None-Match parsed, wherever: ours and werkzeug's."""
    lengths: list[int] = []

    def spy(value: str | None) -> ETags:
        lengths.append(len(value or ""))
        return parse_etags(value)

    for module in ("app.api.conditional", "werkzeug.sansio.request", "werkzeug.sansio.http"):
        monkeypatch.setattr(f"{module}.parse_etags", spy, raising=False)
    return lengths


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_an_oversized_condition_is_a_400_before_it_is_parsed(
    client: FlaskClient,
    resource: tuple[str, dict[str, str]],
    parsed: list[int],
    header: str,
    method: str,
) -> None:
    url, change = resource
    before = client.get(url)
    tag = before.headers["ETag"]
    # 398 KB naming the current tag first: a parse would have found it, at 458 ms of CPU.
    huge = ", ".join([tag, *(f'"v{n}"' for n in range(50_000))])
    assert len(huge) > 398_000
    parsed.clear()

    refused = client.open(
        url,
        method=method,
        json=None if method in ("GET", "DELETE") else change,
        headers={header: huge},
    )

    body = assert_problem(refused, 400)
    assert header in str(body["detail"])
    assert parsed == []
    _unchanged(client, url, before)


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
def test_conditions_are_bounded_in_bytes_and_tags(
    client: FlaskClient, resource: tuple[str, dict[str, str]], header: str
) -> None:
    url, _ = resource
    tag = client.get(url).headers["ETag"]
    # If-Match names the current tag (a 200); If-None-Match names another (a 200 too).
    named = tag if header == "If-Match" else '"v999"'
    at_most = ", ".join([named, *(f'"x{n}"' for n in range(MAX_CONDITION_TAGS - 1))])
    one_tag_more = f'{at_most}, "x{MAX_CONDITION_TAGS}"'
    padding = "x" * (MAX_CONDITION_BYTES - len(f'{named}, ""'))
    longest = f'{named}, "{padding}"'
    one_byte_more = f'{named}, "{padding}x"'
    assert len(longest) == MAX_CONDITION_BYTES

    assert client.get(url, headers={header: at_most}).status_code == 200
    assert_problem(client.get(url, headers={header: one_tag_more}), 400)
    assert client.get(url, headers={header: longest}).status_code == 200
    assert_problem(client.get(url, headers={header: one_byte_more}), 400)


# If-None-Match on writes (RFC 9110 13.1.2): "*" while the resource exists, or a tag naming
# its current version, is a 412 with nothing changed.


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_if_none_match_star_on_an_existing_resource_is_412(
    client: FlaskClient, resource: tuple[str, dict[str, str]], method: str
) -> None:
    url, change = resource
    before = client.get(url)

    refused = client.open(
        url,
        method=method,
        json=None if method == "DELETE" else change,
        headers={"If-None-Match": "*"},
    )

    assert_problem(refused, 412)
    _unchanged(client, url, before)


@pytest.mark.parametrize("form", ["{tag}", "W/{tag}", '"other", {tag}', "{coded}"])
@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_if_none_match_naming_the_current_tag_on_a_write_is_412(
    client: FlaskClient, resource: tuple[str, dict[str, str]], method: str, form: str
) -> None:
    url, change = resource
    before = client.get(url)
    tag = before.headers["ETag"]
    # Weak comparison, as for a GET: a weak tag, or a compressed body's, names the version.
    coded = tag[:-1] + ':gzip"'

    refused = client.open(
        url,
        method=method,
        json=None if method == "DELETE" else change,
        headers={"If-None-Match": form.format(tag=tag, coded=coded)},
    )

    assert_problem(refused, 412)
    _unchanged(client, url, before)


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_if_none_match_naming_other_tags_lets_the_write_happen(
    client: FlaskClient, resource: tuple[str, dict[str, str]], method: str
) -> None:
    url, change = resource
    stale = client.get(url).headers["ETag"]
    assert client.patch(url, json=change).status_code == 200

    written = client.open(
        url,
        method=method,
        json=None if method == "DELETE" else change,
        headers={"If-None-Match": f'{stale}, "v999.999", W/"nonsense"'},
    )

    assert written.status_code == (204 if method == "DELETE" else 200), written.get_json()
    assert client.get(url).status_code == (404 if method == "DELETE" else 200)


@pytest.mark.parametrize("if_none_match", ["*", '"v1"', '"v1.1"'])
def test_if_none_match_on_a_missing_resource_is_404(
    client: FlaskClient, if_none_match: str
) -> None:
    headers = {"If-None-Match": if_none_match}
    assert_problem(client.patch("/users/999999", json={"email": "a@b.io"}, headers=headers), 404)
    assert_problem(client.put("/posts/999999", json={"title": "t"}, headers=headers), 404)
    assert_problem(client.delete("/users/999999", headers=headers), 404)
    assert_problem(client.delete("/posts/999999", headers=headers), 404)


def test_if_match_then_if_none_match_on_a_write(
    client: FlaskClient, resource: tuple[str, dict[str, str]]
) -> None:
    url, change = resource
    before = client.get(url)
    tag = before.headers["ETag"]

    # Both must hold: If-Match allows the current version, If-None-Match refuses it.
    both = client.patch(url, json=change, headers={"If-Match": tag, "If-None-Match": tag})
    star = client.patch(url, json=change, headers={"If-Match": "*", "If-None-Match": "*"})
    assert_problem(both, 412)
    assert_problem(star, 412)
    _unchanged(client, url, before)

    allowed = client.patch(url, json=change, headers={"If-Match": tag, "If-None-Match": '"v0"'})
    assert allowed.status_code == 200, allowed.get_json()


WRITTEN_MEANWHILE = {
    "user": ("app.services.users.get_user", cast(Table, User.__table__)),
    "post": ("app.services.posts.get_post", cast(Table, Post.__table__)),
}


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_write_landing_between_the_read_and_the_write_makes_it_412(
    client: FlaskClient,
    resource: tuple[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
) -> None:
    # If-None-Match naming tags, If-Match none: the view reads the current version, then
    # writes only at that version. Another write landing in between must not be overwritten.
    url, change = resource
    before = client.get(url)
    kind = "user" if url.startswith("/users") else "post"
    getter, table = WRITTEN_MEANWHILE[kind]
    read = import_string(getter)
    reads: list[int] = []

    def read_then_another_write(row_id: int) -> Any:
        row = read(row_id)
        reads.append(row_id)
        db.session.execute(
            update(table).where(table.c.id == row_id).values(version=table.c.version + 1)
        )
        return row

    monkeypatch.setattr(getter, read_then_another_write)

    refused = client.open(
        url,
        method=method,
        json=None if method == "DELETE" else change,
        headers={"If-None-Match": '"v999.999", "v999"'},
    )

    assert_problem(refused, 412)
    assert reads == [before.get_json()["id"]]
    monkeypatch.undo()
    # The refused request's transaction, the write "meanwhile" with it, was rolled back.
    _unchanged(client, url, before)


# GET (and HEAD) per RFC 9110 13.2.2: If-Match first (a 412), then If-None-Match (a 304).


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_read_evaluates_if_match_before_if_none_match(
    client: FlaskClient, resource: tuple[str, dict[str, str]], method: str
) -> None:
    url, change = resource
    stale = client.get(url).headers["ETag"]
    assert client.patch(url, json=change).status_code == 200
    tag = client.get(url).headers["ETag"]

    stale_match = client.open(url, method=method, headers={"If-Match": stale, "If-None-Match": tag})
    current = client.open(url, method=method, headers={"If-Match": tag, "If-None-Match": tag})
    star = client.open(url, method=method, headers={"If-Match": "*"})
    weak = client.open(url, method=method, headers={"If-Match": f"W/{tag}"})

    assert stale_match.status_code == 412
    assert (current.status_code, current.headers["ETag"]) == (304, tag)
    assert star.status_code == 200
    assert weak.status_code == 412  # If-Match compares strongly
