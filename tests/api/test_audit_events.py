"""Change events: each write's events are recorded in its own transaction, read through
GET /audit-events and its export, and sealed into a hash chain that audit verify checks."""

import io
import itertools
import json
import threading
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from app.db.session import db
from app.models import AuditEvent
from app.services import audit
from tests.factories import make_api_key, make_user, set_password
from tests.helpers import failing_statements, listening, ndjson

_names = itertools.count()


def _events_after(app: Flask, last: int) -> list[str]:
    with app.app_context():
        stmt = select(AuditEvent.type).where(AuditEvent.id > last).order_by(AuditEvent.id)
        return list(db.session.execute(stmt).scalars())


def _last_id(app: Flask) -> int:
    with app.app_context():
        return int(
            db.session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar_one()
        )


def _name() -> str:
    return f"ev{next(_names)}"


def _create(client: FlaskClient) -> tuple[int, list[str], int | None]:
    name = _name()
    response = client.post("/users", json={"username": name, "email": f"{name}@example.com"})
    return response.status_code, ["user.created"], response.get_json()["id"]


Outcome = tuple[int, list[str]]


def _op_create(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    status, expected, user_id = _create(client)
    users.append(user_id or 0)
    return status, expected


def _target(users: list[int]) -> int:
    return users[-1] if users else 999_999


def _op_create_taken(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    # The lost race: the unique index refuses it (users[0] is never deleted).
    taken = client.get(f"/users/{users[0]}").get_json()["username"]
    response = client.post("/users", json={"username": taken, "email": f"{_name()}@e.com"})
    return response.status_code, []


def _op_create_invalid(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    return client.post("/users", json={"username": ""}).status_code, []


def _op_rename(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    response = client.patch(f"/users/{_target(users)}", json={"username": _name()})
    return response.status_code, ["user.updated"]


def _op_deactivate(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    was_active = client.get(f"/users/{_target(users)}").get_json().get("active")
    response = client.patch(f"/users/{_target(users)}", json={"active": False})
    # Already inactive: the write happened (its version moved) but changed nothing.
    return response.status_code, ["user.deactivated" if was_active else "user.updated"]


def _op_stale(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    response = client.patch(
        f"/users/{_target(users)}", json={"email": f"{_name()}@e.com"}, headers={"If-Match": '"0"'}
    )
    return response.status_code, []


def _op_delete(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    # The first user stays (_op_create_taken takes its name); past it, a 404.
    response = client.delete(f"/users/{users[-1] if len(users) > 1 else 999_999}")
    if response.status_code == 204:
        users.pop()
    return response.status_code, ["user.deleted"]


def _op_post(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    response = client.post(f"/users/{_target(users)}/posts", json={"title": "t", "body": "b"})
    return response.status_code, ["post.created"]


def _op_replay(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    name = _name()
    body = {"username": name, "email": f"{name}@example.com"}
    first = client.post("/users", json=body, headers={"Idempotency-Key": name})
    last = _last_id(app)
    again = client.post("/users", json=body, headers={"Idempotency-Key": name})
    assert again.headers.get("Idempotency-Replayed") == "true"
    assert _events_after(app, last) == []
    users.append(first.get_json()["id"])
    return first.status_code, ["user.created"]


def _op_rolled_back(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    # The update and its event are written, then the sessions' revocation fails: the
    # transaction rolls back, events and all.
    with failing_statements(app, "user_session"):
        response = client.patch(f"/users/{_target(users)}", json={"active": False})
    return response.status_code, []


def _import(client: FlaskClient, rows: list[dict[str, str]]) -> int:
    response = client.post(
        "/users/import", data=ndjson(rows), headers={"Content-Type": "application/x-ndjson"}
    )
    return response.status_code


def _op_import(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    names = [_name() for _ in range(3)]
    status = _import(client, [{"username": n, "email": f"{n}@example.com"} for n in names])
    return status, ["users.imported"]


def _op_import_taken(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    return _import(client, [{"username": "dup", "email": "a@example.com"}] * 2), []


def _op_import_cut(client: FlaskClient, app: Flask, users: list[int]) -> Outcome:
    name = _name()
    sent = ndjson([{"username": name, "email": f"{name}@example.com"}])
    response = client.post(
        "/users/import",
        input_stream=io.BytesIO(sent),
        headers={"Content-Type": "application/x-ndjson"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": "100000"},
    )
    return response.status_code, []


OPERATIONS = {
    name.removeprefix("_op_"): fn for name, fn in list(globals().items()) if name.startswith("_op_")
}


@hypothesis.settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@hypothesis.given(ops=st.lists(st.sampled_from(sorted(OPERATIONS)), min_size=1, max_size=8))
def test_a_success_has_exactly_its_events_and_a_failure_none(
    app: Flask, client: FlaskClient, ops: list[str]
) -> None:
    users: list[int] = []
    for op in ["create", *ops]:
        last = _last_id(app)
        status, expected = OPERATIONS[op](client, app, users)
        recorded = _events_after(app, last)
        if 200 <= status < 300:
            assert recorded == expected, (op, status)
        else:
            assert recorded == [], (op, status)


def test_an_event_names_its_actor_and_changes_field_by_field(
    app: Flask, client: FlaskClient
) -> None:
    token = make_api_key(app, name="auditor")
    prefix = token.split("_")[1]
    keyed = app.test_client()
    keyed.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    created = keyed.post(
        "/users",
        json={"username": "ann", "email": "ann@example.com"},
        headers={"X-Request-ID": "req-1"},
    )
    user_id = created.get_json()["id"]
    keyed.patch(f"/users/{user_id}", json={"email": "ann@example.org"})
    page = client.get(f"/audit-events?resource_type=user&resource_id={user_id}").get_json()
    updated, made = page["items"]
    assert made["type"] == "user.created"
    assert made["actor"] == {"kind": "api_key", "id": prefix, "label": "auditor"}
    assert made["request_id"] == "req-1"
    assert made["changes"] == {
        "username": [None, "ann"],
        "email": [None, "ann@example.com"],
        "active": [None, True],
    }
    assert updated["type"] == "user.updated"
    assert updated["changes"] == {"email": ["ann@example.com", "ann@example.org"]}
    assert updated["resource"] == {"type": "user", "id": str(user_id)}


def test_a_password_change_says_only_that_it_changed(app: Flask) -> None:
    user = make_user(app)
    set_password(app, user.id, "first password 1")
    anonymous = app.test_client()
    tokens = anonymous.post(
        "/auth/sessions", json={"username": user.username, "password": "first password 1"}
    ).get_json()
    signed_in = app.test_client()
    signed_in.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens['access_token']}"
    last = _last_id(app)
    changed = signed_in.put(
        "/me/password",
        json={"current_password": "first password 1", "new_password": "second password 2"},
    )
    assert changed.status_code == 204, changed.get_data(as_text=True)
    assert _events_after(app, last) == ["user.password_changed"]
    with app.app_context():
        row = db.session.execute(select(AuditEvent).where(AuditEvent.id > last)).scalar_one()
        assert row.changes == {}
        assert row.actor_kind == "user"
        assert row.actor_id == str(user.id)
        dumped = json.dumps([r.changes for r in db.session.execute(select(AuditEvent)).scalars()])
    assert "password" not in dumped
    assert "$argon2" not in dumped


def test_list_filters_and_pages_without_repeats(app: Flask, client: FlaskClient) -> None:
    for _ in range(5):
        _create(client)
    seen: list[int] = []
    cursor = ""
    while True:
        page = client.get(f"/audit-events?type=user.created&limit=2&sort=id{cursor}").get_json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert len(seen) == 5
    assert seen == sorted(seen)
    assert client.get("/audit-events?type=post.created").get_json()["items"] == []
    future = client.get("/audit-events?since=2999-01-01T00:00:00Z").get_json()
    assert future["items"] == []


def test_audit_needs_its_scope(app: Flask) -> None:
    token = make_api_key(app, scopes=["users:read"])
    response = app.test_client().get("/audit-events", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    export = app.test_client().get(
        "/audit-events/export", headers={"Authorization": f"Bearer {token}"}
    )
    assert export.status_code == 403


def test_export_streams_every_event_as_ndjson(app: Flask, client: FlaskClient) -> None:
    for _ in range(3):
        _create(client)
    response = client.get("/audit-events/export?type=user.created")
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["type"] for line in lines] == ["user.created"] * 3
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)


def _sql(app: Flask, statement: str) -> None:
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text(statement))


def test_verify_names_an_altered_event(app: Flask, client: FlaskClient) -> None:
    for _ in range(4):
        _create(client)
    with app.app_context():
        assert audit.seal() >= 4
        assert audit.verify().problem is None
        victim = db.session.execute(select(func.max(AuditEvent.id))).scalar_one() - 1
    _sql(app, f"UPDATE audit_event SET actor_label = 'someone else' WHERE id = {victim}")
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"event {victim} (#" in result.output
    assert "was altered" in result.output


def test_verify_names_a_missing_event(app: Flask, client: FlaskClient) -> None:
    for _ in range(4):
        _create(client)
    with app.app_context():
        audit.seal()
        first = db.session.execute(select(func.min(AuditEvent.seq))).scalar_one() or 0
    _sql(app, f"DELETE FROM audit_event WHERE seq = {first + 1}")
    verdict = _verified(app)
    assert verdict.problem is not None
    assert f"#{first + 1} of the chain is missing" in verdict.problem
    # The last one gone: the chain's head still names it.
    with app.app_context():
        last = db.session.execute(select(func.max(AuditEvent.seq))).scalar_one()
    _sql(app, f"DELETE FROM audit_event WHERE seq >= {first + 1}")
    verdict = _verified(app)
    assert verdict.problem is not None
    assert f"to #{last}" in verdict.problem


def _verified(app: Flask) -> audit.Verdict:
    with app.app_context():
        return audit.verify()


def test_events_committed_out_of_order_are_chained_by_the_next_seal(
    app: Flask, client: FlaskClient
) -> None:
    _create(client)
    with app.app_context():
        audit.seal()
    _create(client)
    _create(client)
    with app.app_context():
        assert audit.seal() == 2
        assert audit.seal() == 0
    assert _verified(app).problem is None
    assert _verified(app).checked >= 3


def test_prune_keeps_the_chain_verifiable_from_its_anchor(app: Flask, client: FlaskClient) -> None:
    for _ in range(4):
        _create(client)
    with app.app_context():
        audit.seal()
    # Nothing is a day old yet; then a cutoff a day ahead makes every event old (moving
    # their times back instead would be an alteration the chain would report).
    result = app.test_cli_runner().invoke(args=["audit", "prune", "--older-than-days", "1"])
    assert result.exit_code == 0, result.output
    assert "Deleted 0 events" in result.output
    with app.app_context():
        gone, anchor = audit.prune(timedelta(days=-1))
        assert gone >= 4
        assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar() == 0
    _create(client)
    with app.app_context():
        audit.seal()
    verdict = _verified(app)
    assert verdict.problem is None
    assert verdict.anchor_seq == anchor
    assert verdict.checked == 1


def test_cli_writes_record_the_cli_as_actor(app: Flask) -> None:
    runner = app.test_cli_runner()
    last = _last_id(app)
    created = runner.invoke(args=["api-keys", "create", "robot", "--scope", "users:read"])
    assert created.exit_code == 0, created.output
    prefix = created.output.strip().splitlines()[-1].split("_")[1]
    revoked = runner.invoke(args=["api-keys", "revoke", prefix])
    assert revoked.exit_code == 0, revoked.output
    assert _events_after(app, last) == ["api_key.created", "api_key.revoked"]
    with app.app_context():
        kinds = db.session.execute(
            select(AuditEvent.actor_kind, AuditEvent.changes).where(AuditEvent.id > last)
        ).all()
    assert {kind for kind, _ in kinds} == {"cli"}
    assert "secret" not in json.dumps([changes for _, changes in kinds])


def test_group_events(app: Flask, client: FlaskClient) -> None:
    user = make_user(app)
    last = _last_id(app)
    group = client.post("/groups", json={"name": _name(), "scopes": ["users:read"]}).get_json()
    client.put(f"/groups/{group['id']}/members/{user.id}")
    client.put(f"/groups/{group['id']}/members/{user.id}")  # already one: no event
    client.patch(f"/groups/{group['id']}", json={"scopes": ["posts:read"]})
    client.delete(f"/groups/{group['id']}/members/{user.id}")
    client.delete(f"/groups/{group['id']}")
    assert _events_after(app, last) == [
        "group.created",
        "group.member_added",
        "group.updated",
        "group.member_removed",
        "group.deleted",
    ]


def test_sealers_running_at_once_never_fork_the_chain(app: Flask, client: FlaskClient) -> None:
    for _ in range(30):
        _create(client)
    sealed: list[int] = []

    def seal() -> None:
        with app.app_context():
            sealed.append(audit.seal(batch=3))

    threads = [threading.Thread(target=seal) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sealed) == _last_id(app) - _first_id(app) + 1
    verdict = _verified(app)
    assert verdict.problem is None
    assert verdict.unsealed == 0


def _first_id(app: Flask) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.min(AuditEvent.id))).scalar_one() or 0)


@pytest.mark.parametrize(
    "query",
    [
        "until=0.5",
        "since=0001-01-01T00:00:00%2B23:59",
        "until=2026-01-01T00:00:00",
        "type=a%00b",
        "actor_id=%20",
    ],
)
def test_a_filter_the_database_could_not_take_is_a_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/audit-events?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"


def _deadlock(backend: str) -> Exception:
    if backend == "postgresql":
        import psycopg  # noqa: PLC0415 - the driver of this backend only

        return psycopg.errors.DeadlockDetected("forced deadlock for a test")
    import pymysql  # type: ignore[import-untyped]  # noqa: PLC0415

    error: Exception = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
    return error


@pytest.mark.backends("postgresql", "mysql")
def test_a_deadlock_the_server_tries_again_records_once(
    app: Flask, client: FlaskClient, backend: str
) -> None:
    user = make_user(app)
    failed: list[str] = []

    def deadlock_once(cursor: Any, statement: str, parameters: Any, context: Any) -> None:
        # After the update and its event, in the same transaction: the sessions' revocation.
        if "user_session" in statement and not failed:
            failed.append(statement)
            raise _deadlock(backend)

    last = _last_id(app)
    with listening(app, "do_execute", deadlock_once):
        response = client.patch(f"/users/{user.id}", json={"active": False})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert failed
    assert _events_after(app, last) == ["user.deactivated"]


def test_an_updates_event_has_the_row_befores_values_as_they_were_typed(
    app: Flask, client: FlaskClient
) -> None:
    # The row before is read through the driver's cursor (events.row_before): a boolean
    # still comes back a boolean, where SQLite and MariaDB send an integer.
    user = make_user(app)
    last = _last_id(app)
    for body in ({"active": False}, {"active": True}, {"email": "moved@example.com"}):
        assert client.patch(f"/users/{user.id}", json=body).status_code == 200
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent.type, AuditEvent.changes)
            .where(AuditEvent.id > last)
            .order_by(AuditEvent.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("user.deactivated", {"active": [True, False]}),
        ("user.reactivated", {"active": [False, True]}),
        ("user.updated", {"email": [user.email, "moved@example.com"]}),
    ]
    assert all(type(v) is bool for row in rows[:2] for v in row.changes["active"])


def test_signing_in_and_a_reused_refresh_token_are_recorded(app: Flask) -> None:
    user = make_user(app)
    set_password(app, user.id, "first password 1")
    anonymous = app.test_client()
    last = _last_id(app)
    tokens = anonymous.post(
        "/auth/sessions", json={"username": user.username, "password": "first password 1"}
    ).get_json()
    refresh = {"refresh_token": tokens["refresh_token"]}
    assert anonymous.post("/auth/sessions/refresh", json=refresh).status_code == 200
    # Reused: refused, and the session it belonged to is revoked (that change commits).
    assert anonymous.post("/auth/sessions/refresh", json=refresh).status_code == 401
    assert _events_after(app, last) == ["session.created", "session.revoked"]
