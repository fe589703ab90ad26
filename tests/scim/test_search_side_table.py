"""The search side table (app/db/user_search.py), MariaDB's and PostgreSQL's: contains and
ends-with through it give exactly what the plain LIKE (or strpos) scan gives, before and after
the worker's copy, through creates, renames, email changes, deletes, imports, rollbacks and a
write committed during a copy."""

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text

from app.db import user_search
from app.db.session import db
from app.db.types import Match, folded_match
from app.models import User
from app.schemas.users import UserListQuery
from app.services import users
from tests.helpers import listening, ndjson, require_search_side_table, user_rows
from tests.scim.test_users import scim_client, user_body  # noqa: F401 - fixture

pytestmark = pytest.mark.backends(
    "mysql", "postgresql", reason="the side table: MariaDB's with Mroonga, PostgreSQL's"
)

# Texts that ask the side table (letters, digits, @ . _ + - '; on PostgreSQL only those under
# 3 characters) and some that do not.
TEXTS = ["a", "ab", "AB", "li", "ce@", "@example.com", ".org", "x-1", "o'", "r_", "b+", "9"]
TEXTS += ["@e", "E.", "-1", "'b", "_r", "+b", "zz", "ß", "é", "a b", ""]
# What each backend's searches send when they ask the side table.
ASKED = {"mysql": "MATCH(", "postgresql": "user_search"}
HOWS: list[Match] = ["contains", "ends"]


@pytest.fixture
def engine(app: Flask) -> Iterator[Engine]:
    """The app's engine, where migration 0017 (CI installs Mroonga) or 0019 made the side
    table."""
    with app.app_context():
        require_search_side_table(db.engine)
        yield db.engine


def _ids(app: Flask, column: Any, wanted: str, how: Match, side_index: bool) -> list[int]:
    with app.app_context():
        condition = folded_match(column, wanted, how, side_index=side_index)
        found = db.session.scalars(select(User.id).where(condition).order_by(User.id)).all()
        db.session.rollback()
        return list(found)


def _q(app: Flask, wanted: str) -> list[int]:
    # /users?q= as the endpoint sends it, which asks the side table itself where it can.
    with app.app_context():
        rows, _ = users.list_users(UserListQuery(q=wanted, limit=100))
        db.session.rollback()
        return sorted(row.id for row in rows)


def _same_as_the_scan(app: Flask) -> int:
    """Compare every text both ways on both columns, and as /users?q= with the scan of
    either column; the number of (non-empty) answers."""
    answered = 0
    for column, wanted, how in itertools.product((User.username, User.email), TEXTS, HOWS):
        scanned = _ids(app, column, wanted, how, side_index=False)
        assert _ids(app, column, wanted, how, side_index=True) == scanned, (column, wanted, how)
        answered += bool(scanned)
    for wanted in filter(None, TEXTS):
        either = _ids(app, User.username, wanted, "contains", side_index=False)
        either += _ids(app, User.email, wanted, "contains", side_index=False)
        assert _q(app, wanted) == sorted(set(either)), wanted
    return answered


def _as_if_never_copied_an_hour_ago(engine: Engine) -> None:
    # Every user an hour old and the worker never run: its next copy takes every user, and
    # its watermark (a second before the oldest open transaction) passes them all, so the
    # answers then come from the side table alone.
    with engine.begin() as conn:
        conn.execute(text("UPDATE user_account SET updated_at = updated_at - INTERVAL '1' HOUR"))
        conn.execute(
            text("UPDATE user_search_mark SET indexed_until = :never"),
            {"never": user_search.NEVER},
        )


def _changed_since(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM user_account WHERE updated_at >= "
                    "(SELECT indexed_until FROM user_search_mark WHERE id = 1)"
                )
            ).scalar_one()
        )


def _grams(value: str) -> str:
    # PostgreSQL's side table holds each 1- and 2-character substring of the folded value.
    folded = value.lower()
    return " ".join(sorted({folded[i : i + n] for n in (1, 2) for i in range(len(folded) - n + 1)}))


def _side_rows(engine: Engine) -> set[tuple[int, str, str]]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.execute(
                text(
                    "SELECT s.id, s.username_grams, s.email_grams FROM user_search s "
                    "JOIN user_account u ON u.id = s.id"
                )
            )
            return {
                (row.id, " ".join(sorted(row.username_grams)), " ".join(sorted(row.email_grams)))
                for row in rows
            }
        rows = conn.execute(
            text(
                "SELECT s.id, s.username, s.email FROM user_search s "
                "JOIN user_account u ON u.id = s.id"
            )
        )
        return {(row.id, row.username, row.email) for row in rows}


def _user_rows(engine: Engine) -> set[tuple[int, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, username, email FROM user_account"))
        if engine.dialect.name == "postgresql":
            return {(row.id, _grams(row.username), _grams(row.email)) for row in rows}
        return {(row.id, row.username, row.email) for row in rows}


def test_searches_match_the_scan_through_every_kind_of_write(
    app: Flask,
    engine: Engine,
    client: FlaskClient,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    names = ["alice", "Albert", "bob.x-1", "o'brien", "carol_r", "dab+b", "Zoë", "straße", "a9"]
    ids = {}
    for name in names:
        response = scim_client.post("/scim/v2/Users", json=user_body(name))
        assert response.status_code == 201, response.get_data(as_text=True)
        ids[name] = response.get_json()["id"]
    imported = client.post(
        "/users/import", data=ndjson(user_rows(30, "imp-ab")), content_type="application/x-ndjson"
    )
    assert imported.status_code in (200, 201), imported.get_data(as_text=True)
    # Before the worker's copy: the users are read by updated_at.
    assert _same_as_the_scan(app) > 10

    _as_if_never_copied_an_hour_ago(engine)
    assert user_search.catch_up(engine) == len(names) + 30
    assert _changed_since(engine) == 0
    assert _side_rows(engine) == _user_rows(engine)
    assert _same_as_the_scan(app) > 10

    # Renamed, email changed, deleted, created, imported, and a create rolled back.
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
    renamed = scim_client.patch(
        f"/scim/v2/Users/{ids['alice']}",
        json={**patch, "Operations": [{"op": "replace", "path": "userName", "value": "zed"}]},
    )
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    emailed = client.patch(f"/users/{ids['bob.x-1']}", json={"email": "bob@example.org"})
    assert emailed.status_code == 200, emailed.get_data(as_text=True)
    assert scim_client.delete(f"/scim/v2/Users/{ids['carol_r']}").status_code == 204
    assert scim_client.post("/scim/v2/Users", json=user_body("newab")).status_code == 201
    again = client.post(
        "/users/import", data=ndjson(user_rows(5, "late")), content_type="application/x-ndjson"
    )
    assert again.status_code in (200, 201), again.get_data(as_text=True)
    with app.app_context():
        db.session.add(User(username="rolled-ab", email="rolled-ab@example.com"))
        db.session.flush()
        db.session.rollback()
    # Every write marked its user (the rename, the email, the create, the five imported);
    # the side table still has alice, bob's old email and carol, outvoted by the LIKE.
    assert _changed_since(engine) == 1 + 1 + 1 + 5
    assert _side_rows(engine) != _user_rows(engine)
    assert _same_as_the_scan(app) > 10

    user_search.catch_up(engine)
    assert _side_rows(engine) == _user_rows(engine)
    assert _same_as_the_scan(app) > 10


def test_a_write_committed_during_a_copy_is_still_found(app: Flask, engine: Engine) -> None:
    # Its row is stamped more than the second's margin before the copy, and committed after
    # the copy's snapshot: a watermark of "now less a second" would pass it uncopied; below
    # the open transaction's start, the row stays "changed since".
    user_search.catch_up(engine)
    sleep = "SELECT pg_sleep(1.5)" if engine.dialect.name == "postgresql" else "DO SLEEP(1.5)"
    with engine.connect() as writer:
        writer.execute(
            text(
                "INSERT INTO user_account (username, email) VALUES ('slowab', 'slowab@example.com')"
            )
        )
        writer.execute(text(sleep))
        user_search.catch_up(engine)  # the insert is not committed: not copied
        writer.commit()
    found = _ids(app, User.username, "wa", "contains", side_index=True)
    assert found == _ids(app, User.username, "wa", "contains", side_index=False)
    assert len(found) == 1


# On PostgreSQL only a contains under 3 characters asks it (pg_trgm serves the rest).
THROUGH_THE_SIDE_TABLE = {
    "mysql": ('userName co "ndM"', 'emails ew "me@example.com"'),
    "postgresql": ('userName co "dM"', 'emails co "E@"'),
}


def test_scim_sends_co_and_ew_through_the_side_table(
    app: Flask,
    backend: str,
    engine: Engine,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    assert scim_client.post("/scim/v2/Users", json=user_body("findme")).status_code == 201
    assert scim_client.post("/scim/v2/Users", json=user_body("other")).status_code == 201
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    for expression in THROUGH_THE_SIDE_TABLE[backend]:
        sent.clear()
        with listening(app, "before_cursor_execute", record):
            body = scim_client.get("/scim/v2/Users", query_string={"filter": expression})
        assert body.get_json()["totalResults"] == 1
        assert any(ASKED[backend] in statement for statement in sent), sent


def test_scim_scans_under_not_and_or(
    app: Flask,
    backend: str,
    engine: Engine,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    # There MariaDB would probe the candidates for every user, slower than the scan, and
    # PostgreSQL would scan the users to test each against them.
    assert scim_client.post("/scim/v2/Users", json=user_body("findme")).status_code == 201
    assert scim_client.post("/scim/v2/Users", json=user_body("other")).status_code == 201
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    cases = {'not (userName co "dM")': 1, 'userName co "dM" or userName eq "nobody"': 1}
    for expression, total in cases.items():
        sent.clear()
        with listening(app, "before_cursor_execute", record):
            body = scim_client.get("/scim/v2/Users", query_string={"filter": expression})
        assert body.get_json()["totalResults"] == total
        assert not any(ASKED[backend] in statement for statement in sent), sent


@pytest.mark.postgresql_only("ANALYZE's most common elements of an array are PostgreSQL's")
def test_a_substring_most_users_hold_scans_on_postgresql(
    app: Flask,
    engine: Engine,
    scim_client: FlaskClient,  # noqa: F811
) -> None:
    # Reading the side table for a substring many users hold is slower than the scan: 0.5%
    # of them or more (here all but one of 401) scan, the rest (1 of 401) ask it.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_account (username, email) SELECT 'zq' || n, 'zq' || n "
                "|| '@example.com' FROM generate_series(1, 400) AS n"
            )
        )
        conn.execute(text("INSERT INTO user_account (username, email) VALUES ('xy', 'xy@x.org')"))
    user_search.catch_up(engine)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE user_search"))
    user_search.forget(engine)  # the list of common substrings is read again
    assert ("username", "zq") in user_search.common(engine)
    assert ("username", "xy") not in user_search.common(engine)
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    for expression, total, asked in (
        ('userName co "ZQ"', 400, False),
        ('userName co "xy"', 1, True),
    ):
        sent.clear()
        with listening(app, "before_cursor_execute", record):
            body = scim_client.get("/scim/v2/Users", query_string={"filter": expression})
        assert body.get_json()["totalResults"] == total
        assert any(ASKED["postgresql"] in statement for statement in sent) == asked, sent
    assert _q(app, "zq") == _ids(app, User.username, "zq", "contains", side_index=False)[:100]
