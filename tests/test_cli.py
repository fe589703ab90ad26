"""flask --app app api-keys create|list|revoke."""

import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.models import ApiKey

TOKEN_LINE = re.compile(r"umk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}\n")


def test_create_prints_the_secret_alone_on_stdout(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["api-keys", "create", "ci-bot", "--scope", "users:read", "--scope", "posts:read"]
    )
    assert result.exit_code == 0, result.output
    match = TOKEN_LINE.fullmatch(result.stdout)
    assert match is not None, result.stdout
    assert "shown only this once" in result.stderr
    with app.app_context():
        key = db.session.execute(select(ApiKey).where(ApiKey.prefix == match[1])).scalar_one()
        assert key.name == "ci-bot"
        assert key.scopes == ["posts:read", "users:read"]
        assert key.expires_at is None
    response = app.test_client().get(
        "/users", headers={"Authorization": f"Bearer {result.stdout.strip()}"}
    )
    assert response.status_code == 200


def test_create_with_expiry_sets_expires_at(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["api-keys", "create", "temp", "--scope", "users:read", "--expires-in", "7"]
    )
    assert result.exit_code == 0, result.output
    match = TOKEN_LINE.fullmatch(result.stdout)
    assert match is not None
    with app.app_context():
        key = db.session.execute(select(ApiKey).where(ApiKey.prefix == match[1])).scalar_one()
        assert key.expires_at is not None
        remaining = key.expires_at - datetime.now(UTC)
        assert timedelta(days=6, hours=23) < remaining <= timedelta(days=7)


def test_create_without_scope_or_with_unknown_scope_fails(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["api-keys", "create", "x"]).exit_code != 0
    bad = runner.invoke(args=["api-keys", "create", "x", "--scope", "admin"])
    assert bad.exit_code != 0
    assert "admin" in bad.output
    with app.app_context():
        assert db.session.execute(select(ApiKey)).first() is None


def test_list_shows_keys_without_secrets(app: Flask) -> None:
    runner = app.test_cli_runner()
    token = runner.invoke(args=["api-keys", "create", "lister", "--scope", "users:read"]).stdout
    result = runner.invoke(args=["api-keys", "list"])
    assert result.exit_code == 0
    prefix = token.split("_")[1]
    assert prefix in result.stdout
    assert "lister" in result.stdout
    assert token.strip().split("_", 2)[2] not in result.stdout


def test_revoke_stops_the_key_at_once(app: Flask) -> None:
    runner = app.test_cli_runner()
    token = runner.invoke(args=["api-keys", "create", "old", "--scope", "users:read"]).stdout
    headers = {"Authorization": f"Bearer {token.strip()}"}
    client = app.test_client()
    assert client.get("/users", headers=headers).status_code == 200
    result = runner.invoke(args=["api-keys", "revoke", token.split("_")[1]])
    assert result.exit_code == 0, result.output
    assert client.get("/users", headers=headers).status_code == 401
    assert "revoked" in runner.invoke(args=["api-keys", "list"]).stdout


def test_revoke_unknown_prefix_exits_non_zero(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["api-keys", "revoke", "000000000000"])
    assert result.exit_code == 1
    assert "No API key" in result.stderr
