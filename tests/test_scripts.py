"""Scripts and cron jobs: the documented script (docs/how-to/scripts.md), run from unrelated
folders, and app.scripts."""

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, insert, select, text

from app import create_app
from app.config import Settings
from app.db.migrations import head_revision
from app.db.session import db
from app.models import ApiKey, Post, User
from app.scripts import script
from tests.helpers import (
    doc_block,
    embedded_env,
    free_port,
    project_copy,
    stop,
    wait_until_serving,
    with_empty_database,
)

LOCAL_KEY = re.compile(r"umk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
BIN = Path(sys.executable).parent
NOT_MIGRATED = (
    f"Error: the database has no schema yet; this release needs {head_revision()}. Apply the "
    "migrations first: alembic upgrade head (the container's migrate command).\n"
)


def _no_file(path: Path) -> str:
    return (
        f"Error: there is no database file at {path}. Apply the migrations first: alembic "
        "upgrade head (or start the server once, for the embedded database).\n"
    )


def _readme_script(folder: Path) -> Path:
    """The documented script (docs/how-to/scripts.md), written into ``folder`` (made here: a
    cron job's own folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prune.py"
    path.write_text(doc_block("docs/how-to/scripts.md", "Write the script", "python"))
    return path


def _run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _old_and_new_posts(settings: Settings) -> None:
    # Through the helper itself, in this process: two users, one post a year and a day old.
    with script(settings=settings):
        ids = db.session.execute(
            insert(User).returning(User.id, sort_by_parameter_order=True),
            [{"username": f"cron{n}", "email": f"cron{n}@example.com"} for n in range(2)],
        ).scalars()
        old = datetime.now(UTC) - timedelta(days=366)
        db.session.execute(
            insert(Post),
            [
                {"author_id": author, "title": "t", "body": "b", "created_at": when}
                for author, when in zip(ids, [old, datetime.now(UTC)], strict=True)
            ],
        )
        db.session.commit()


def _count(settings: Settings, model: type[User | Post | ApiKey]) -> int:
    with script(settings=settings):
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_readme_script_from_another_folder_uses_the_database_alembic_made(
    tmp_path: Path,
) -> None:
    project = project_copy(tmp_path / "project")
    env = embedded_env(project)
    migrated = _run([str(BIN / "alembic"), "upgrade", "head"], cwd=project, env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert not LOCAL_KEY.search(migrated.stdout + migrated.stderr)
    settings = Settings(INSTANCE_PATH=project / "instance")
    _old_and_new_posts(settings)
    # As cron runs it: from a folder of its own, no settings, the project's interpreter.
    prune = _readme_script(tmp_path / "cron")
    done = _run([sys.executable, str(prune)], cwd=tmp_path / "cron", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "posts pruned: 1, users: 2\n"
    assert done.stderr == ""
    assert _count(settings, Post) == 1
    assert _count(settings, ApiKey) == 0  # no key minted by alembic or the script
    assert not (tmp_path / "cron" / "instance").exists()


def test_readme_script_on_a_missing_embedded_database_exits_one_and_makes_nothing(
    tmp_path: Path,
) -> None:
    project = project_copy(tmp_path / "project")
    prune = _readme_script(tmp_path / "cron")
    done = _run([sys.executable, str(prune)], cwd=tmp_path / "cron", env=embedded_env(project))
    assert done.returncode == 1
    assert done.stderr == _no_file(project / "instance" / "app.db")
    assert done.stdout == ""
    assert not (project / "instance").exists()
    assert not (tmp_path / "cron" / "instance").exists()


@with_empty_database
def test_readme_script_on_an_unmigrated_database_exits_one(
    empty_database_url: tuple[str, str], tmp_path: Path
) -> None:
    backend, url = empty_database_url
    if backend == "sqlite":
        Path(url.removeprefix("sqlite:///")).touch()  # there, but never migrated
    prune = _readme_script(tmp_path / "cron")
    env = {**embedded_env(), "DATABASE_URL": url}
    done = _run([sys.executable, str(prune)], cwd=tmp_path / "cron", env=env)
    assert done.returncode == 1
    assert done.stderr == NOT_MIGRATED
    assert done.stdout == ""


def test_readme_script_on_a_migrated_database(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    prune = _readme_script(tmp_path / "cron")
    env = {**embedded_env(), "DATABASE_URL": database_url}
    done = _run([sys.executable, str(prune)], cwd=tmp_path / "cron", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "posts pruned: 0, users: 0\n"


def test_no_other_flask_command_nor_create_app_makes_a_database_or_a_key(
    tmp_path: Path,
) -> None:
    project = project_copy(tmp_path / "project")
    env = embedded_env(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["api-keys", "list"], ["users", "seed"], ["users", "export", "-"]):
        done = _run([str(BIN / "flask"), "--app", "app", *args], cwd=elsewhere, env=env)
        assert done.returncode == 1, done.stdout
        assert done.stderr == _no_file(project / "instance" / "app.db")
    built = _run(
        [sys.executable, "-c", "from app import create_app; create_app()"], cwd=elsewhere, env=env
    )
    assert built.returncode == 0, built.stderr
    assert not LOCAL_KEY.search(built.stderr)
    assert not (project / "instance").exists()
    assert not (elsewhere / "instance").exists()


def test_settings_read_the_projects_env_file_from_any_folder(tmp_path: Path) -> None:
    project = project_copy(tmp_path / "project")
    (project / ".env").write_text(f"INSTANCE_PATH={tmp_path / 'from-project'}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text(f"INSTANCE_PATH={tmp_path / 'from-cwd'}\n")
    code = "from app.config import Settings; print(Settings().instance_path)"
    done = _run([sys.executable, "-c", code], cwd=elsewhere, env=embedded_env(project))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{tmp_path / 'from-project'}\n"


@pytest.mark.live
def test_scripts_use_the_database_flask_run_made_and_mint_no_key(tmp_path: Path) -> None:
    project = project_copy(tmp_path / "project")
    env = embedded_env(project)
    started_in = tmp_path / "started-here"
    started_in.mkdir()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "flask.log"
    command = [str(BIN / "flask"), "--app", "app", "run", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=started_in, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until_serving(base_url, process, log_path)
        keys = LOCAL_KEY.findall(log_path.read_text(errors="replace"))
        assert len(set(keys)) == 1, log_path.read_text(errors="replace")
        created = httpx.post(
            f"{base_url}/users",
            json={"username": "cron", "email": "cron@example.com"},
            headers={"Authorization": f"Bearer {keys[0]}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
    finally:
        stop(process)
    prune = _readme_script(tmp_path / "cron")
    done = _run([sys.executable, str(prune)], cwd=tmp_path / "cron", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "posts pruned: 0, users: 1\n"
    assert not LOCAL_KEY.search(done.stderr)
    assert _count(Settings(INSTANCE_PATH=project / "instance"), ApiKey) == 1


def test_create_app_never_migrates_nor_mints_even_with_auto_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for settings in (
        Settings(INSTANCE_PATH=tmp_path),
        Settings(INSTANCE_PATH=tmp_path, AUTO_MIGRATE=True),
    ):
        create_app(settings)
    assert list(tmp_path.iterdir()) == []
    assert not LOCAL_KEY.search(capsys.readouterr().err)


def test_script_rolls_back_on_error_and_discards_what_it_did_not_commit(app: Flask) -> None:
    row = {"username": "undone", "email": "undone@example.com"}

    def half_done() -> None:
        with script(app):
            db.session.execute(insert(User), [row])
            raise RuntimeError("halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        half_done()
    with script(app):
        db.session.execute(insert(User), [row])  # no commit: gone at the end of the block
    with script(app):
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 0
        db.session.execute(insert(User), [row])
        db.session.commit()
    with script(app):
        names = db.session.execute(select(User.username)).scalars().all()
    assert names == ["undone"]


def test_script_on_a_missing_database_exits_one_before_its_block(tmp_path: Path) -> None:
    ran = False
    with pytest.raises(SystemExit) as exited, script(settings=Settings(INSTANCE_PATH=tmp_path)):
        ran = True
    assert not ran
    assert exited.value.code == _no_file(tmp_path / "app.db").removesuffix("\n")
    assert list(tmp_path.iterdir()) == []


def test_script_takes_an_app_or_settings_not_both(app: Flask) -> None:
    with pytest.raises(TypeError, match="not both"), script(app, settings=Settings()):
        pass


def test_script_leaves_no_session_behind(app: Flask) -> None:
    with script(app):
        db.session.execute(text("SELECT 1"))
        session = db.session()
    assert not session.in_transaction()
