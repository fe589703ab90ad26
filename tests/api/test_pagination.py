"""Keyset pagination: no row twice, none skipped, while rows come and go."""

import base64
import itertools
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.db.session import db
from app.models import User
from app.schemas.users import UserListQuery, UserPage, UserRead
from app.services import users
from tests.factories import make_user
from tests.helpers import listening

SORTS = ["id", "-id", "created_at", "-created_at", "username", "-username"]


def _page(client: FlaskClient, **params: Any) -> dict[str, Any]:
    response = client.get("/users", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _walk(client: FlaskClient, sort: str, limit: int, between: Any = None) -> list[int]:
    seen: list[int] = []
    cursor: str | None = None
    for step in itertools.count():
        params: dict[str, Any] = {"sort": sort, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        page = _page(client, **params)
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        if between is not None:
            between(step)
        assert step < 1000, "pagination does not end"
    raise AssertionError  # pragma: no cover


@pytest.mark.parametrize("sort", SORTS)
def test_walk_all_pages_returns_every_row_once_in_order(
    app: Flask, client: FlaskClient, sort: str
) -> None:
    # Duplicate-looking usernames (case) are impossible, but equal prefixes test the tie-break.
    for n in range(23):
        make_user(app, username=f"name{n % 5}-{n}")
    seen = _walk(client, sort, limit=4)
    assert len(seen) == 23
    assert len(set(seen)) == 23
    full = _page(client, sort=sort, limit=100)["items"]
    assert [item["id"] for item in full] == seen


@pytest.mark.parametrize("sort", SORTS)
def test_walk_while_rows_are_inserted_and_deleted_never_repeats_a_row(
    app: Flask, client: FlaskClient, sort: str
) -> None:
    initial = [make_user(app, username=f"base{n:02d}").id for n in range(30)]
    deleted: set[int] = set()
    created: list[int] = []

    def churn(step: int) -> None:
        # Between page requests: add rows on both ends of every order, delete some unseen ones.
        created.append(make_user(app, username=f"aaa-new{step}").id)
        created.append(make_user(app, username=f"zzz-new{step}").id)
        victim = initial[-(step + 1)] if step % 2 else initial[step + 10]
        with app.app_context():
            db.session.delete(db.session.get(User, victim))
            db.session.commit()
        deleted.add(victim)

    seen = _walk(client, sort, limit=5, between=churn)
    assert len(seen) == len(set(seen)), "a row was returned twice"
    survivors = set(initial) - deleted
    assert survivors <= set(seen), "a row present throughout was skipped"


@pytest.mark.parametrize("limit", [1, 2])
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("username", ["Alice", "bob", "carol", "Dave"]),
        ("-username", ["Dave", "carol", "bob", "Alice"]),
    ],
)
def test_username_sorts_ignore_letter_case(
    app: Flask, client: FlaskClient, sort: str, expected: list[str], limit: int
) -> None:
    names = {make_user(app, username=name).id: name for name in ["bob", "Alice", "carol", "Dave"]}
    # Small pages put cursors on both sides of every change of case.
    seen = _walk(client, sort, limit=limit)
    assert [names[user_id] for user_id in seen] == expected


@pytest.mark.parametrize(
    ("sort", "scan"), [("username", "Index Scan"), ("-username", "Index Scan Backward")]
)
@pytest.mark.postgresql_only("the plan is read from PostgreSQL's EXPLAIN")
def test_username_sort_pages_through_the_unique_lower_index(
    app: Flask, client: FlaskClient, backend: str, sort: str, scan: str
) -> None:
    for name in ["bob", "Alice", "carol", "Dave", "eve"]:
        make_user(app, username=name)
    cursor = _page(client, sort=sort, limit=2)["next_cursor"]
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, dbapi_cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM user_account" in statement:
            sent.append((statement, parameters))

    with listening(app, "before_cursor_execute", record):
        _page(client, sort=sort, limit=2, cursor=cursor)
    [(statement, parameters)] = sent
    with app.app_context(), db.engine.connect() as connection:
        # A table of five rows is cheaper to scan and sort than to read through an index;
        # without the scan the plan shows whether the index serves order and condition alike.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        plan = "\n".join(row[0] for row in rows)
    assert f"{scan} using uq_user_account_username_lower" in plan, plan
    assert "Sort" not in plan, plan


def test_filters_match_exactly_whatever_the_case(app: Flask, client: FlaskClient) -> None:
    target = make_user(app, username="Alice", email="Alice@Example.com")
    make_user(app, username="alice2", email="alice2@example.com")
    by_name = _page(client, username="ALICE")["items"]
    by_email = _page(client, email="alice@example.COM")["items"]
    assert [u["id"] for u in by_name] == [target.id]
    assert [u["id"] for u in by_email] == [target.id]


def test_cursor_from_another_sort_is_400(app: Flask, client: FlaskClient) -> None:
    for _ in range(3):
        make_user(app)
    cursor = _page(client, sort="id", limit=1)["next_cursor"]
    response = client.get("/users", query_string={"sort": "username", "cursor": cursor})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_last_page_has_null_cursor(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    make_user(app)
    page = _page(client, limit=2)
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


def _forged(sort: str, key: list[Any]) -> str:
    raw = json.dumps({"s": sort, "k": key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("id", [10**30]),
        ("-id", [-(10**30)]),
        ("created_at", ["9999-12-31T23:59:59-23:00", 1]),
        ("created_at", ["0001-01-01T00:00:00+23:00", 1]),
        ("created_at", ["2026-01-01T00:00:00+00:00", 10**30]),
        ("username", ["\ud800"]),
        ("username", ["a\u0000b"]),
        ("username", [1]),
    ],
)
def test_forged_cursor_values_are_400(client: FlaskClient, sort: str, key: list[Any]) -> None:
    response = client.get("/users", query_string={"sort": sort, "cursor": _forged(sort, key)})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["detail"] == "The cursor is not valid."


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("username", ["alice", 7]),  # a (username, id) cursor of the old case-sensitive order
        ("-username", ["alice", 7]),
        ("created_at", ["2026-01-01T00:00:00+00:00"]),
        ("id", [1, 2]),
    ],
)
def test_cursor_of_another_shape_says_start_again(
    client: FlaskClient, sort: str, key: list[Any]
) -> None:
    response = client.get("/users", query_string={"sort": sort, "cursor": _forged(sort, key)})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "start again" in response.get_json()["detail"]


def test_list_bytes_are_those_of_the_validated_page(app: Flask, client: FlaskClient) -> None:
    # The list is written from rows without validating them: it must be what UserPage says.
    for name in ["ann", "Émile", 'quote"and\\back', "<b>&amp;</b>", "日本語", "z" * 50]:
        make_user(app, username=name, email=f"{len(name)}.{abs(hash(name))}@example.com")
    assert tuple(UserRead.model_fields) == users.USER_FIELDS
    for params in [{"limit": 100}, {"limit": 2, "sort": "-username"}]:
        response = client.get("/users", query_string=params)
        with app.test_request_context():
            rows, cursor = users.list_users(UserListQuery.model_validate(params))
        page = UserPage.model_validate({"items": rows, "next_cursor": cursor}, from_attributes=True)
        assert response.get_data() == page.model_dump_json().encode()
        assert response.mimetype == "application/json"


def test_one_user_bytes_are_those_of_the_validated_model(app: Flask, client: FlaskClient) -> None:
    # GET, POST and PATCH write the row without validating it: it must be what UserRead says.
    for name in ["Émile", 'quote"and\\back', "<b>&amp;</b>", "日本語"]:
        created = client.post("/users", json={"username": name, "email": f"{len(name)}@ex.com"})
        user_id = created.get_json()["id"]
        changed = client.patch(f"/users/{user_id}", json={"email": f"{len(name)}@new.example"})
        fetched = client.get(f"/users/{user_id}")
        with app.test_request_context():
            row = users.get_user(user_id)
        assert fetched.get_data() == UserRead.model_validate(row).model_dump_json().encode()
        assert changed.get_data() == fetched.get_data()
        for response in (created, changed, fetched):
            again = UserRead.model_validate(response.get_json()).model_dump_json().encode()
            assert response.get_data() == again
            assert response.mimetype == "application/json"
