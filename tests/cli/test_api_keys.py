"""flask --app app api-keys create|list|revoke; every command's check of the schema."""

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from flask import Flask
from sqlalchemy import create_engine, pool, select, text

from app import create_app
from app.config import Settings
from app.db.migrations import alembic_config, head_revision
from app.db.session import db
from app.models import ApiKey
from tests.helpers import with_empty_database

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


def _unmigrated_app(url: str, tmp_path: Path) -> Flask:
    settings = Settings(DATABASE_URL=url, AUTO_MIGRATE=False, INSTANCE_PATH=tmp_path / "instance")
    return create_app(settings)


def _dispose(app: Flask) -> None:
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@with_empty_database
def test_commands_on_an_unmigrated_database_say_so_and_exit_non_zero(
    empty_database_url: tuple[str, str], tmp_path: Path
) -> None:
    backend, url = empty_database_url
    app = _unmigrated_app(url, tmp_path)
    runner = app.test_cli_runner()
    try:
        if backend == "sqlite":
            # A mistyped path must not become a new, empty database.
            missing = runner.invoke(args=["api-keys", "list"])
            assert missing.exit_code == 1
            assert missing.stderr == (
                f"Error: there is no database file at {tmp_path}/empty.db. Apply the migrations "
                "first: alembic upgrade head (or start the server once, for the embedded "
                "database).\n"
            )
            assert not (tmp_path / "empty.db").exists()
            (tmp_path / "empty.db").touch()
        commands = (
            ["api-keys", "list"],
            ["users", "export", str(tmp_path / "out.csv")],
            ["users", "seed", "--count", "1"],
        )
        for args in commands:
            result = runner.invoke(args=args)
            assert result.exit_code == 1, result.output
            assert result.stderr == (
                f"Error: the database has no schema yet; this release needs {head_revision()}. "
                "Apply the migrations first: alembic upgrade head (the container's migrate "
                "command).\n"
            )
        assert not (tmp_path / "out.csv").exists()
        _upgrade(url, "0003")
        behind = runner.invoke(args=["users", "import", "-"], input=b"")
        assert behind.exit_code == 1
        assert "the database is at migration 0003; this release needs" in behind.stderr
        # Help needs no database.
        assert runner.invoke(args=["users", "import", "--help"]).exit_code == 0
    finally:
        _dispose(app)


def _upgrade(url: str, revision: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
    engine.dispose()


def test_a_schema_a_newer_release_migrated_is_served(app: Flask) -> None:
    # The release step migrates before the new code rolls out: until then this code keeps
    # serving, on a schema its migrations do not know but that stays compatible with it.
    with app.app_context():
        head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        db.session.execute(text("UPDATE alembic_version SET version_num = 'ffff_newer'"))
        db.session.commit()
    try:
        listed = app.test_cli_runner().invoke(args=["api-keys", "list"])
    finally:
        with app.app_context():
            db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
            db.session.commit()
    assert listed.exit_code == 0, listed.output
    assert listed.stderr == "No API keys.\n"


def test_an_unreachable_database_is_one_line_and_exit_one(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/nowhere"
    app = _unmigrated_app(url, tmp_path)
    runner = app.test_cli_runner()
    try:
        result = runner.invoke(args=["api-keys", "list"])
        # Arguments are checked first: a bad name is said as such, database or not.
        bad_name = runner.invoke(args=["api-keys", "create", " ", "--scope", "users:read"])
    finally:
        _dispose(app)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach the database: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert bad_name.exit_code == 2
    assert "Invalid value for 'NAME': 1 to" in bad_name.stderr
