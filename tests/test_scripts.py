"""Scripts and cron jobs: only a server migrates and makes the first key, never a script."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from tests.helpers import embedded_env, project_copy

LOCAL_KEY = re.compile(r"umk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
BIN = Path(sys.executable).parent


def _no_file(path: Path) -> str:
    return (
        f"Error: there is no database file at {path}. Apply the migrations first: alembic "
        "upgrade head (or start the server once, for the embedded database).\n"
    )


def _run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_no_other_flask_command_nor_create_app_makes_a_database_or_a_key(
    tmp_path: Path,
) -> None:
    project = project_copy(tmp_path / "project")
    env = embedded_env(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["api-keys", "list"], ["users", "export", "-"]):
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
