"""GET /users?q=: a case-insensitive contains search on username and email."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.db.types import SEARCH_INDEXES
from tests.factories import make_user
from tests.helpers import listening, lookup_plan


def _ids(client: FlaskClient, **params: Any) -> list[int]:
    response = client.get("/users", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.get_json()["items"]]


def test_q_matches_username_or_email_anywhere_whatever_the_case(
    app: Flask, client: FlaskClient
) -> None:
    starts = make_user(app, username="Alice", email="a1@example.com").id
    inside = make_user(app, username="malicious", email="m@example.com").id
    by_mail = make_user(app, username="zed", email="zed.ALI@example.org").id
    make_user(app, username="bob", email="bob@example.net")

    assert sorted(_ids(client, q="ali")) == sorted([starts, inside, by_mail])
    assert sorted(_ids(client, q="ALI")) == sorted([starts, inside, by_mail])
    assert _ids(client, q="example.org") == [by_mail]
    assert _ids(client, q="nobody") == []


@pytest.mark.parametrize("text", ["%", "_", "\\", "a%c", "a_c", "'", "\\'"])
def test_wildcards_and_quotes_in_q_match_only_themselves(
    app: Flask, client: FlaskClient, text: str
) -> None:
    make_user(app, username="abc", email="abc@example.com")
    make_user(app, username="aXc", email="axc@example.com")
    literal = make_user(app, username=f"x{text}y", email="lit@example.com").id
    assert _ids(client, q=text) == [literal]


def test_q_combines_with_filters_sorts_and_cursors(app: Flask, client: FlaskClient) -> None:
    team = [make_user(app, username=f"team-{n}").id for n in range(7)]
    make_user(app, username="other")
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"q": "TEAM-", "sort": "-id", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/users", query_string=params).get_json()
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(team, reverse=True)
    assert _ids(client, q="team", username="TEAM-3") == [team[3]]


@pytest.mark.parametrize("bad", ["", "x" * 255, "a\x00b"])
def test_bad_q_is_a_400_problem(app: Flask, client: FlaskClient, bad: str) -> None:
    response = client.get("/users", query_string={"q": bad})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


@pytest.mark.postgresql_only("the plan is read from PostgreSQL's EXPLAIN")
def test_q_is_served_by_the_trigram_indexes_on_postgresql(app: Flask, client: FlaskClient) -> None:
    for n in range(5):
        make_user(app, username=f"search{n}")
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, dbapi_cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM user_account" in statement:
            sent.append((statement, parameters))

    with listening(app, "before_cursor_execute", record):
        _ids(client, q="arch3")
    [(statement, parameters)] = sent
    plan = lookup_plan(app, statement, parameters)
    for name in SEARCH_INDEXES:
        assert f"Bitmap Index Scan on {name}" in plan, plan
