"""Connections and sessions never outlive their request, whatever the outcome."""

import random

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.util import ScopedRegistry

from app.db.session import db
from tests.factories import make_user
from tests.helpers import assert_nothing_checked_out, failing_statements


def test_forced_database_error_is_503_without_driver_message(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user(app)
    with failing_statements(app, "FROM user_account"):
        response = client.get(f"/users/{user.id}")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "forced" not in response.get_data(as_text=True)
    assert "user_account" not in response.get_data(as_text=True)


def test_500_requests_with_failures_leave_no_connection_or_session(
    app: Flask, client: FlaskClient
) -> None:
    users = [make_user(app) for _ in range(5)]
    rng = random.Random(500)
    statuses: dict[int, int] = {}

    def record(status: int) -> None:
        statuses[status] = statuses.get(status, 0) + 1

    for n in range(500):
        kind = rng.choice(["get", "list", "missing", "conflict", "invalid", "create", "db"])
        target = rng.choice(users)
        if kind == "get":
            record(client.get(f"/users/{target.id}").status_code)
        elif kind == "list":
            record(client.get("/users?limit=3").status_code)
        elif kind == "missing":
            record(client.get("/users/999999").status_code)
        elif kind == "conflict":
            body = {"username": target.username.upper(), "email": f"c{n}@example.com"}
            record(client.post("/users", json=body).status_code)
        elif kind == "invalid":
            record(client.post("/users", json={"username": "", "email": "x"}).status_code)
        elif kind == "create":
            body = {"username": f"new{n}", "email": f"new{n}@example.com"}
            record(client.post("/users", json=body).status_code)
        else:
            with failing_statements(app, "user_account"):
                record(client.patch(f"/users/{target.id}", json={"username": f"p{n}"}).status_code)

    assert {200, 201, 404, 409, 422, 503} <= statuses.keys(), statuses
    assert not {s for s in statuses if s >= 500} - {503}, statuses
    assert_nothing_checked_out(app)
    # Flask-SQLAlchemy keys sessions by app context; teardown must have removed every one.
    registry = db.session.registry
    assert isinstance(registry, ScopedRegistry)
    assert registry.registry == {}
