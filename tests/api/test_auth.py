"""API keys: every data operation needs a valid key with the right scope."""

import hmac
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_openapi3.utils import parse_rule
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from app import create_app
from app.config import Settings
from app.db.session import db
from app.models import ApiKey, Group, Post, User
from app.services import api_keys
from app.services.api_keys import ALL_SCOPES
from app.web.auth import _is_public
from app.web.problems import SCIM_MIMETYPE, SCIM_PREFIX
from tests.factories import (
    PUBLIC_HOOK_URL,
    make_api_key,
    make_delivery,
    make_group,
    make_post,
    make_user,
    make_webhook,
)
from tests.helpers import assert_problem, listening

TOKEN_PATTERN = re.compile(r"umk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def _operations(app: Flask) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every protected (method, rule, required scopes) the app serves."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if _is_public(rule.endpoint, view):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule, tuple(getattr(view, "required_scopes", ()))))
    return found


_SCIM_SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
_SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
_SCIM_BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
_SCIM_PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "externalId", "value": "matrix"}],
}


def _scim_user(name: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "emails": [{"value": f"{name}@example.com"}],
    }


# How to call each protected operation successfully; a new operation must be added here.
_BODIES: dict[tuple[str, str], dict[str, Any] | bytes | None] = {
    ("POST", "/users/import"): b'{"username": "imported", "email": "imported@example.com"}\n',
    ("GET", "/users/export"): None,
    ("POST", "/users"): {"username": "matrix-new", "email": "matrix-new@example.com"},
    ("GET", "/users"): None,
    ("GET", "/users/<id:user_id>"): None,
    ("PATCH", "/users/<id:user_id>"): {"email": "patched@example.com"},
    ("PUT", "/users/<id:user_id>"): {"email": "put@example.com"},
    ("DELETE", "/users/<id:user_id>"): None,
    ("PUT", "/users/<id:user_id>/password"): {"new_password": "a new and longer passphrase"},
    ("POST", "/users/<id:user_id>/invitation"): None,
    ("GET", "/mail-messages"): None,
    ("GET", "/auth/whoami"): None,
    ("POST", "/users/<id:user_id>/posts"): {"title": "New", "body": "Text"},
    ("GET", "/users/<id:user_id>/posts"): None,
    ("GET", "/posts"): None,
    ("GET", "/posts/<id:post_id>"): None,
    ("PATCH", "/posts/<id:post_id>"): {"title": "Patched"},
    ("PUT", "/posts/<id:post_id>"): {"body": "Put"},
    ("DELETE", "/posts/<id:post_id>"): None,
    ("GET", "/auth/sessions"): None,
    ("DELETE", "/auth/sessions/current"): None,
    ("DELETE", "/auth/sessions/<id:session_id>"): None,
    ("GET", "/me"): None,
    ("PATCH", "/me"): {"email": "me@example.com"},
    ("PUT", "/me/password"): {"current_password": "x" * 8, "new_password": "y" * 12},
    ("POST", "/groups"): {"name": "matrix-group", "scopes": ["users:read"]},
    ("GET", "/groups"): None,
    ("GET", "/groups/<id:group_id>"): None,
    ("PATCH", "/groups/<id:group_id>"): {"scopes": ["posts:read"]},
    ("DELETE", "/groups/<id:group_id>"): None,
    ("GET", "/groups/<id:group_id>/members"): None,
    ("PUT", "/groups/<id:group_id>/members/<id:user_id>"): None,
    ("GET", "/audit-events"): None,
    ("GET", "/audit-events/export"): None,
    ("DELETE", "/groups/<id:group_id>/members/<id:user_id>"): None,
    ("POST", "/webhooks"): {"url": PUBLIC_HOOK_URL, "events": ["*"]},
    ("GET", "/webhooks"): None,
    ("GET", "/webhooks/<id:webhook_id>"): None,
    ("PATCH", "/webhooks/<id:webhook_id>"): {"description": "patched"},
    ("DELETE", "/webhooks/<id:webhook_id>"): None,
    ("POST", "/webhooks/<id:webhook_id>/secret"): None,
    ("GET", "/webhooks/<id:webhook_id>/deliveries"): None,
    ("POST", "/webhooks/<id:webhook_id>/deliveries/<id:delivery_id>/retry"): None,
    ("GET", "/scim/v2/ServiceProviderConfig"): None,
    ("GET", "/scim/v2/ResourceTypes"): None,
    ("GET", "/scim/v2/ResourceTypes/<type_id>"): None,
    ("GET", "/scim/v2/Schemas"): None,
    ("GET", "/scim/v2/Schemas/<path:schema_id>"): None,
    ("GET", "/scim/v2/Users"): None,
    ("GET", "/scim/v2/Groups"): None,
    ("POST", "/scim/v2/Users/.search"): {"schemas": [_SCIM_SEARCH]},
    ("POST", "/scim/v2/Groups/.search"): {"schemas": [_SCIM_SEARCH]},
    ("POST", "/scim/v2/.search"): {"schemas": [_SCIM_SEARCH]},
    ("POST", "/scim/v2/Users"): _scim_user("matrix-scim"),
    ("GET", "/scim/v2/Users/<id:user_id>"): None,
    ("PUT", "/scim/v2/Users/<id:user_id>"): _scim_user("matrix-put"),
    ("PATCH", "/scim/v2/Users/<id:user_id>"): _SCIM_PATCH,
    ("DELETE", "/scim/v2/Users/<id:user_id>"): None,
    ("POST", "/scim/v2/Groups"): {"schemas": [_SCIM_GROUP], "displayName": "matrix-scim"},
    ("GET", "/scim/v2/Groups/<id:group_id>"): None,
    ("PUT", "/scim/v2/Groups/<id:group_id>"): {"schemas": [_SCIM_GROUP], "displayName": "g2"},
    ("PATCH", "/scim/v2/Groups/<id:group_id>"): _SCIM_PATCH,
    ("DELETE", "/scim/v2/Groups/<id:group_id>"): None,
    ("POST", "/scim/v2/Bulk"): {"schemas": [_SCIM_BULK], "Operations": []},
}
# Answered, but not with a 2xx, to a key that may call them: SCIM's search over every type.
_NOT_OFFERED = {("POST", "/scim/v2/.search"): 501}
# A signed-in user's own: an API key with every scope gets a 403 (tests/api/test_sessions.py
# calls them with access tokens).
_USERS_ONLY = {
    ("GET", "/auth/sessions"),
    ("DELETE", "/auth/sessions/current"),
    ("DELETE", "/auth/sessions/<id:session_id>"),
    ("GET", "/me"),
    ("PATCH", "/me"),
    ("PUT", "/me/password"),
}

CASES = ["none", "malformed", "unknown", "wrong-secret", "revoked", "expired", "wrong-scope", "ok"]


def test_every_protected_operation_is_in_the_matrix(app: Flask) -> None:
    assert {(m, r) for m, r, _ in _operations(app)} == set(_BODIES)


def _token_for(app: Flask, case: str, scopes: tuple[str, ...]) -> str | None:
    if case == "wrong-secret":
        return f"umk_{make_api_key(app).split('_')[1]}_" + "B" * 43
    if case == "revoked":
        return make_api_key(app, revoked=True)
    if case == "expired":
        return make_api_key(app, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    if case == "wrong-scope":
        return make_api_key(app, [s for s in ALL_SCOPES if s not in scopes])
    if case == "ok":
        return make_api_key(app, scopes)  # type: ignore[arg-type]
    return None


def _header_for(app: Flask, case: str, scopes: tuple[str, ...]) -> dict[str, str]:
    fixed = {
        "none": {},
        "malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
        "unknown": {"Authorization": "Bearer umk_000000000000_" + "A" * 43},
    }
    if case in fixed:
        return fixed[case]
    return {"Authorization": f"Bearer {_token_for(app, case, scopes)}"}


@pytest.mark.parametrize("case", CASES)
def test_every_operation_answers_by_credentials(app: Flask, case: str) -> None:
    client = app.test_client()
    for method, rule, scopes in _operations(app):
        if case == "wrong-scope" and not scopes:
            continue  # needs only a valid key: "ok" covers it
        user = make_user(app)
        post = make_post(app, user)
        group = make_group(app)
        webhook = make_webhook(app)
        delivery = make_delivery(app, webhook)
        url = (
            rule.replace("<id:user_id>", str(user.id))
            .replace("<id:group_id>", str(group))
            .replace("<id:post_id>", str(post.id))
            .replace("<id:webhook_id>", str(webhook))
            .replace("<id:delivery_id>", str(delivery))
            .replace("<id:session_id>", "1")
            .replace("<type_id>", "User")
            .replace("<path:schema_id>", "urn:ietf:params:scim:schemas:core:2.0:User")
        )
        headers = _header_for(app, case, scopes)
        body = _BODIES[(method, rule)]
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/x-ndjson"
            response = client.open(url, method=method, data=body, headers=headers)
        else:
            response = client.open(url, method=method, json=body, headers=headers)
        # Read to its end: a streamed body left open keeps its request's context pushed.
        response.get_data()
        label = f"{method} {rule} with {case}"
        if case == "ok" and (method, rule) in _USERS_ONLY:
            assert response.status_code == 403, label
            continue
        if case == "ok" and (method, rule) in _NOT_OFFERED:
            assert response.status_code == _NOT_OFFERED[(method, rule)], label
            continue
        if case == "ok":
            assert 200 <= response.status_code < 300, label
            continue
        expected = 403 if case == "wrong-scope" else 401
        assert response.status_code == expected, label
        scim = rule.startswith(SCIM_PREFIX)
        assert response.mimetype == (SCIM_MIMETYPE if scim else "application/problem+json"), label
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer"), label
        if case == "wrong-scope":
            assert 'error="insufficient_scope"' in challenge
            if not scim:  # SCIM's error schema has no member for them; the challenge names them
                assert response.get_json()["scopes"] == list(scopes)
        # Nothing was done: the rows are untouched.
        with app.app_context():
            assert db.session.get(User, user.id) is not None, label
            assert db.session.get(Post, post.id) is not None, label
            assert db.session.get(Group, group) is not None, label


def _unauthorized(client: FlaskClient, header: str) -> TestResponse:
    return client.get("/users", headers={"Authorization": header})


def test_unknown_key_and_wrong_secret_are_indistinguishable(
    app: Flask, anonymous_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = make_api_key(app).split("_")[1]
    revoked = make_api_key(app, revoked=True)
    expired = make_api_key(app, expires_at=datetime.now(UTC) - timedelta(days=1))
    headers = {
        "unknown": "Bearer umk_000000000000_" + "A" * 43,
        "wrong-secret": f"Bearer umk_{prefix}_" + "A" * 43,
        "revoked": f"Bearer {revoked}",
        "expired": f"Bearer {expired}",
        "malformed": "Bearer not-a-key",
        "missing": "",
    }
    # Timing: the same work for unknown and wrong secret, one query and one constant-time compare.
    compares: list[str] = []
    real_compare = hmac.compare_digest

    def counting_compare(a: Any, b: Any) -> bool:
        compares.append("compare")
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting_compare)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    bodies = {}
    work = {}
    with listening(app, "before_cursor_execute", count):
        for case, header in headers.items():
            compares.clear()
            statements.clear()
            response = _unauthorized(anonymous_client, header)
            assert response.status_code == 401
            bodies[case] = (response.get_json(), response.headers["WWW-Authenticate"])
            work[case] = (len(compares), len(statements))
    assert len({repr(b) for b in bodies.values()}) == 1, bodies
    assert work["unknown"] == work["wrong-secret"] == (1, 1)


@pytest.mark.parametrize("valid", ["first", "last", "both"])
def test_two_authorization_headers_are_a_400(
    app: Flask, anonymous_client: FlaskClient, valid: str
) -> None:
    # A proxy that checks the first header and an app that reads the last would disagree
    # on who is calling: neither is taken.
    good = f"Bearer {make_api_key(app)}"
    bad = "Bearer umk_000000000000_" + "A" * 43
    first, last = {"first": (good, bad), "last": (bad, good), "both": (good, good)}[valid]

    response = anonymous_client.post(
        "/users",
        json={"username": "twice", "email": "twice@example.com"},
        headers=[("Authorization", first), ("Authorization", last)],
    )

    body = assert_problem(response, 400)
    assert "one Authorization header" in str(body["detail"])
    with app.app_context():
        assert db.session.execute(select(User.id)).first() is None


@pytest.mark.parametrize(
    "value",
    [
        "Bearer {token}, Bearer umk_000000000000_" + "A" * 43,  # what a server joining
        "Bearer umk_000000000000_" + "A" * 43 + ", Bearer {token}",  # two headers sends
        "Bearer {token},",
    ],
)
def test_a_comma_in_the_authorization_header_is_a_400(
    app: Flask, anonymous_client: FlaskClient, value: str
) -> None:
    header = value.format(token=make_api_key(app))

    assert_problem(_unauthorized(anonymous_client, header), 400)


def test_public_endpoints_ignore_repeated_authorization(anonymous_client: FlaskClient) -> None:
    headers = [("Authorization", "Bearer a"), ("Authorization", "Bearer b")]

    assert anonymous_client.get("/healthz", headers=headers).status_code == 200


def test_secret_is_never_stored_or_logged(
    app: Flask, anonymous_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        token = make_api_key(app)
        secret = token.split("_", 2)[2]
        prefix = token.split("_")[1]
        ok = anonymous_client.get("/users", headers={"Authorization": f"Bearer {token}"})
        wrong = anonymous_client.get("/users", headers={"Authorization": f"Bearer {token}x"})
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert ok.status_code == 200
    assert wrong.status_code == 401
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "SELECT" in logged, "SQL logging was not captured"
    assert secret not in logged
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(select(table)):
                assert secret not in repr(tuple(row)), table.name
        stored = db.session.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one()
        assert stored.secret_hash == api_keys.hash_secret(secret)


def test_last_used_at_is_written_at_most_once_a_minute(app: Flask) -> None:
    token = make_api_key(app)
    client = app.test_client()
    updates: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEY"):
            updates.append(statement)

    with listening(app, "before_cursor_execute", count):
        for _ in range(200):
            response = client.get("/auth/whoami", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
    assert len(updates) == 1
    with app.app_context():
        prefix = token.split("_")[1]
        key = db.session.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one()
        assert key.last_used_at is not None


def test_whoami_describes_the_calling_key(app: Flask, anonymous_client: FlaskClient) -> None:
    token = make_api_key(app, ["users:read"], name="reporting")
    response = anonymous_client.get("/auth/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == {
        "kind": "api_key",
        "name": "reporting",
        "prefix": token.split("_")[1],
        "scopes": ["users:read"],
    }


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_operations_endpoints_are_public(anonymous_client: FlaskClient, path: str) -> None:
    assert anonymous_client.get(path).status_code == 200


def test_openapi_declares_bearer_scheme_and_scopes(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    document = anonymous_client.get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for method, rule, scopes in _operations(app):
        if rule.startswith(SCIM_PREFIX):
            continue  # SCIM describes itself (/scim/v2/ServiceProviderConfig)
        operation = document["paths"][parse_rule(rule)][method.lower()]
        assert operation["security"] == [{"bearerAuth": list(scopes)}], (method, rule)
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_key_prefix_is_in_error_logs(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_api_key(app)

    def explode(user_id: int) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.services.users.get_user", explode)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/users/1", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    prefixes = {getattr(r, "api_key", None) for r in caplog.records if r.levelno >= logging.ERROR}
    assert prefixes == {token.split("_")[1]}


def test_first_embedded_start_prints_a_working_key_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = create_app(Settings(INSTANCE_PATH=tmp_path), serving=True)
    banner = capsys.readouterr().err
    printed = TOKEN_PATTERN.findall(banner)
    assert len(set(printed)) == 1
    token = printed[0]
    # Built as python -m app.server is (serving=True): its address, HOST and PORT.
    port = Settings(INSTANCE_PATH=tmp_path).PORT
    assert f'curl -H "Authorization: Bearer {token}" http://127.0.0.1:{port}/users' in banner
    response = first.test_client().get("/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    create_app(Settings(INSTANCE_PATH=tmp_path), serving=True)
    assert not TOKEN_PATTERN.findall(capsys.readouterr().err)
    with first.app_context():
        assert db.session.execute(text("SELECT count(*) FROM api_key")).scalar_one() == 1
        for engine in db.engines.values():
            engine.dispose()
