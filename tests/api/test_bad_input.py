"""Bad input always gets the documented 4xx problem, never a 500, and never echoes values."""

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_user
from tests.helpers import assert_problem

SECRET = "s3cr3t-value-that-must-not-echo"


def test_post_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post("/users", data='{"username": "x",', content_type="application/json")
    assert_problem(response, 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_post_not_json_is_415(client: FlaskClient, content_type: str | None) -> None:
    data = '{"username": "x", "email": "x@example.com"}'
    response = client.post("/users", data=data, content_type=content_type)
    assert_problem(response, 415)


def test_post_unknown_field_is_422_without_its_value(client: FlaskClient) -> None:
    body = {"username": "x", "email": "x@example.com", "password": SECRET}
    response = client.post("/users", json=body)
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {
            "loc": ["body", "password"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]
    assert SECRET not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"username": 123, "email": "x@example.com"}, ["body", "username"]),
        ({"username": "x", "email": ["x@example.com"]}, ["body", "email"]),
        ({"username": "x"}, ["body", "email"]),
        ({"username": "x", "email": "not-an-address"}, ["body", "email"]),
        ({"username": "x" * 81, "email": "x@example.com"}, ["body", "username"]),
        ({"username": "", "email": "x@example.com"}, ["body", "username"]),
        ({"username": " padded", "email": "x@example.com"}, ["body", "username"]),
        ({"username": "tab\tinside", "email": "x@example.com"}, ["body", "username"]),
        ({"username": "nul\x00", "email": "x@example.com"}, ["body", "username"]),
        ({"username": "bell\x07", "email": "x@example.com"}, ["body", "username"]),
        ({"username": "x", "email": "a" * 250 + "@b.example"}, ["body", "email"]),
    ],
)
def test_post_invalid_field_is_422_naming_it(
    client: FlaskClient, body: dict[str, object], loc: list[str]
) -> None:
    problem = assert_problem(client.post("/users", json=body), 422)
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert [e["loc"] for e in errors] == [loc]
    assert all("input" not in e for e in errors)


def test_post_username_of_80_characters_is_accepted(client: FlaskClient) -> None:
    response = client.post("/users", json={"username": "x" * 80, "email": "x@example.com"})
    assert response.status_code == 201


@pytest.mark.parametrize("raw", ["[]", '"{}"', "42", "null"])
def test_post_json_that_is_not_an_object_is_422(client: FlaskClient, raw: str) -> None:
    response = client.post("/users", data=raw, content_type="application/json")
    assert_problem(response, 422)


def test_post_body_of_10_mb_is_413(client: FlaskClient) -> None:
    data = '{"username": "' + "x" * (10 * 1024 * 1024) + '"}'
    assert_problem(client.post("/users", data=data, content_type="application/json"), 413)


def test_patch_empty_body_is_422(app: Flask, client: FlaskClient) -> None:
    user = make_user(app)
    assert_problem(client.patch(f"/users/{user.id}", json={}), 422)


def test_patch_null_field_is_422(app: Flask, client: FlaskClient) -> None:
    user = make_user(app)
    assert_problem(client.patch(f"/users/{user.id}", json={"email": None}), 422)


@pytest.mark.parametrize(
    "user_id", ["abc", "1.5", "0", "-1", "007", "99999999999", "99999999999999999999", "1e3"]
)
def test_non_integer_or_out_of_range_id_is_404(client: FlaskClient, user_id: str) -> None:
    assert_problem(client.get(f"/users/{user_id}"), 404)
    assert_problem(client.delete(f"/users/{user_id}"), 404)


def test_unknown_route_is_404(client: FlaskClient) -> None:
    assert_problem(client.get("/nope"), 404)


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/users")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "sort=password",
        "unknown=1",
        "cursor=%%%",
        "cursor=bm90IGpzb24",
        "cursor=eyJzIjoiaWQiLCJrIjpbInN0ciJdfQ",
        "cursor=" + "A" * 600,
        # Found by the contract fuzzer: the parser kept the first value and ignored the rest.
        "limit=8&limit=x",
        "limit=8&limit=8",
        "sort=id&cursor=a&sort=-id",
    ],
)
def test_list_with_bad_query_is_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/users?{query}")
    problem = assert_problem(response, 400)
    assert "Traceback" not in str(problem)


def test_unexpected_error_is_500_saying_nothing_internal(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(user_id: int) -> None:
        raise RuntimeError("SELECT password FROM secrets -- internal detail")

    monkeypatch.setattr("app.services.users.get_user", explode)
    response = client.get("/users/1")
    problem = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    assert "SELECT" not in text
    assert "RuntimeError" not in text
    assert problem["detail"] == "The server failed to complete the request."


@pytest.mark.parametrize(
    "query", ["username=a%00b", "email=a%00b@example.com", "cursor=a%00b", "cursor=%F0%9F%98%80"]
)
def test_list_with_nul_or_non_cursor_characters_is_400(client: FlaskClient, query: str) -> None:
    assert_problem(client.get(f"/users?{query}"), 400)


@pytest.mark.parametrize("author_id", ["9223372036854775808", "99999999999999999999999"])
def test_list_posts_with_author_id_beyond_64_bits_is_400(
    client: FlaskClient, author_id: str
) -> None:
    assert_problem(client.get(f"/posts?author_id={author_id}"), 400)
