"""Usernames over HTTP: one user whatever the Unicode form typed, no invisible characters.

Composed ("José", U+00E9) and decomposed ("Jose" and U+0301) forms are stored, found and
judged unique as one NFC name, by POST, PATCH, the list filter and both import formats.
"""

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.schemas.common import NAME_RULE
from tests.factories import make_user
from tests.helpers import assert_problem, stored_users

NDJSON = "application/x-ndjson"
CSV = "text/csv"
COMPOSED, DECOMPOSED = "Jos\u00e9", "Jose\u0301"
INVISIBLE = {
    "zero-width-space": "\u200b",
    "right-to-left-override": "\u202e",
    "byte-order-mark": "\ufeff",
    "line-separator": "\u2028",
    "paragraph-separator": "\u2029",
    "tag": "\U000e0041",
}


def _file(fmt: str, rows: list[tuple[str, str]]) -> bytes:
    if fmt == NDJSON:
        lines = (json.dumps({"username": u, "email": e}) for u, e in rows)
        return "".join(f"{line}\n" for line in lines).encode()
    return ("username,email\n" + "".join(f"{u},{e}\n" for u, e in rows)).encode()


def _import(
    client: FlaskClient, fmt: str, rows: list[tuple[str, str]], mode: str = "error"
) -> TestResponse:
    return client.post(
        f"/users/import?on_conflict={mode}", data=_file(fmt, rows), headers={"Content-Type": fmt}
    )


def test_a_decomposed_name_is_stored_and_returned_composed(client: FlaskClient) -> None:
    created = client.post("/users", json={"username": DECOMPOSED, "email": "j@example.com"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["username"] == COMPOSED
    renamed = client.patch(f"/users/{created.get_json()['id']}", json={"username": "Zoe\u0308"})
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["username"] == "Zo\u00eb"


@pytest.mark.parametrize(("first", "second"), [(COMPOSED, DECOMPOSED), (DECOMPOSED, COMPOSED)])
def test_composed_and_decomposed_forms_are_one_username(
    client: FlaskClient, first: str, second: str
) -> None:
    created = client.post("/users", json={"username": first, "email": "a@example.com"})
    assert created.status_code == 201, created.get_json()
    taken = client.post("/users", json={"username": second, "email": "b@example.com"})
    assert assert_problem(taken, 409)["field"] == "username"


@pytest.mark.parametrize("typed", [COMPOSED, DECOMPOSED])
def test_the_username_filter_finds_the_user_in_either_form(
    app: Flask, client: FlaskClient, typed: str
) -> None:
    make_user(app, username=COMPOSED)
    make_user(app, username="Jose")
    found = client.get("/users", query_string={"username": typed})
    assert found.status_code == 200
    assert [u["username"] for u in found.get_json()["items"]] == [COMPOSED]


@pytest.mark.parametrize("character", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_an_invisible_character_in_a_username_is_422(
    app: Flask, client: FlaskClient, character: str
) -> None:
    user = make_user(app)
    for response in (
        client.post("/users", json={"username": f"bo{character}b", "email": "b@example.com"}),
        client.patch(f"/users/{user.id}", json={"username": f"{character}bob"}),
        client.put(f"/users/{user.id}", json={"username": f"bob{character}"}),
    ):
        problem = assert_problem(response, 422)
        assert problem["errors"] == [
            {"loc": ["body", "username"], "msg": NAME_RULE, "type": "string_pattern_mismatch"}
        ]
        assert character not in response.get_data(as_text=True)
    assert len(stored_users(app)) == 1


def test_a_lone_surrogate_in_a_username_is_422(client: FlaskClient) -> None:
    body = '{"username": "bo\\ud800b", "email": "b@example.com"}'
    response = client.post("/users", data=body, content_type="application/json")
    problem = assert_problem(response, 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "username"]]  # type: ignore[attr-defined]


def test_look_alikes_in_other_scripts_are_other_users(app: Flask, client: FlaskClient) -> None:
    # The stated policy: NFC only, no confusable or script check (a Cyrillic "a" here).
    for n, name in enumerate(["admin", "\u0430dmin", "\u0430\u0434\u043c\u0438\u043d"]):
        response = client.post("/users", json={"username": name, "email": f"a{n}@example.com"})
        assert response.status_code == 201, response.get_json()
    assert len(stored_users(app)) == 3


@pytest.mark.parametrize("fmt", [NDJSON, CSV])
def test_an_import_stores_composed_names(app: Flask, client: FlaskClient, fmt: str) -> None:
    response = _import(client, fmt, [(DECOMPOSED, "j@example.com"), ("bob", "b@example.com")])
    assert response.status_code == 200, response.get_json()
    assert stored_users(app) == [(COMPOSED, "j@example.com"), ("bob", "b@example.com")]


@pytest.mark.parametrize("fmt", [NDJSON, CSV])
def test_an_import_judges_both_forms_one_name(app: Flask, client: FlaskClient, fmt: str) -> None:
    rows = [(COMPOSED, "a@example.com"), (DECOMPOSED, "b@example.com")]
    problem = assert_problem(_import(client, fmt, rows), 409)
    line = 2 if fmt == NDJSON else 3
    assert problem["errors"] == [
        {"line": line, "problem": "username repeats an earlier line of the file"}
    ]
    make_user(app, username=COMPOSED, email="c@example.com")
    skipped = _import(client, fmt, [(DECOMPOSED, "d@example.com")], mode="skip")
    assert skipped.get_json()["errors"] == [
        {"line": line - 1, "problem": "username already exists"}
    ]
    assert stored_users(app) == [(COMPOSED, "c@example.com")]


@pytest.mark.parametrize("fmt", [NDJSON, CSV])
def test_an_import_line_with_an_invisible_character_is_422_naming_it(
    app: Flask, client: FlaskClient, fmt: str
) -> None:
    rows = [("ok", "ok@example.com"), ("b\u200bob", "b@example.com"), ("r\u202eo", "r@x.com")]
    response = _import(client, fmt, rows)
    problem = assert_problem(response, 422)
    first = 2 if fmt == NDJSON else 3
    assert [e["line"] for e in problem["errors"]] == [first, first + 1]  # type: ignore[attr-defined]
    assert "\u200b" not in response.get_data(as_text=True)
    assert stored_users(app) == []


def test_an_import_line_with_a_lone_surrogate_is_422_naming_it(
    app: Flask, client: FlaskClient
) -> None:
    body = b'{"username": "ok", "email": "ok@example.com"}\n'
    body += b'{"username": "bo\\ud800b", "email": "b@example.com"}\n'
    response = client.post("/users/import", data=body, headers={"Content-Type": NDJSON})
    problem = assert_problem(response, 422)
    assert [e["line"] for e in problem["errors"]] == [2]  # type: ignore[attr-defined]
    assert stored_users(app) == []
