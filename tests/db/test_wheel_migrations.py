"""The migrations ship in the wheel: built, installed with its dependencies into a fresh
virtualenv, and run from a folder outside the checkout, ``alembic -c <checkout>/alembic.ini
upgrade head`` builds the whole schema from the installed package alone.

Measured here: the wheel builds in 4 to 14 s; installing it with its dependencies takes 25
to 40 s from pip's cache (75 s once, beside other test runs); the alembic commands 7 s.
"""

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, pool

from app.config import Settings
from app.db.base import Base
from app.db.migrations import head_revision

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "app" / "migrations"
TIMEOUT = 600  # seconds for one pip command: a cold cache downloads every dependency


def _run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of the project, built by pip as a user's install builds it."""
    # From a copy of what the wheel is made of: building in the checkout would leave build/
    # behind, and a stale build/lib would still hold files the configuration no longer
    # packages, hiding the very mistake this test is for.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source], cwd=out)
    (built,) = out.glob("app-*.whl")
    return built


def test_the_wheel_carries_every_migration_and_the_template(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    scripts = {f"app/migrations/versions/{path.name}" for path in MIGRATIONS.glob("versions/*.py")}
    assert scripts, "no migrations in the checkout"
    expected = {"app/migrations/env.py", "app/migrations/script.py.mako", *scripts}
    assert expected <= names, sorted(expected - names)


def test_the_wheel_carries_the_mail_templates(wheel: Path) -> None:
    # The worker renders them from the installed package (app/services/mail.py).
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    templates = ROOT / "app" / "services" / "mail_templates"
    expected = {f"app/services/mail_templates/{path.name}" for path in templates.iterdir()}
    assert len(expected) >= 12  # six kinds of mail, text and HTML each (and a layout)
    assert expected <= names, sorted(expected - names)


def test_alembic_migrates_with_the_installed_wheel_from_any_folder(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    # No pip of its own (ensurepip alone takes 14 s): this interpreter's pip installs into it.
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile", wheel],
        cwd=tmp_path,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = tmp_path / "migrated.db"
    # No PYTHONPATH, no setting of this run's: only the installed package and this database.
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and key not in Settings.model_fields
    }
    env.update(DATABASE_URL=f"sqlite:///{database}", PYTHONNOUSERSITE="1")
    imported = _run([python, "-c", "import app; print(app.__file__)"], cwd=elsewhere, env=env)
    assert Path(imported.strip()).is_relative_to(venv), imported  # not this checkout's app
    # Installed, the settings place the package (its instance folder, its .env) as Flask does.
    flask_says = "import flask.sansio.scaffold as s; print(s.find_package('app'))"
    we_say = "import app.config.paths as c; print((c._PREFIX, c._PACKAGE_HOME))"
    placed = _run([python, "-c", flask_says], cwd=elsewhere, env=env)
    assert _run([python, "-c", we_say], cwd=elsewhere, env=env) == placed
    prefix, _ = ast.literal_eval(placed)
    assert Path(prefix) == venv, placed

    alembic: list[str | Path] = [venv / "bin" / "alembic", "-c", ROOT / "alembic.ini"]
    _run([*alembic, "upgrade", "head"], cwd=elsewhere, env=env)

    engine = create_engine(f"sqlite:///{database}", poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    current = _run([*alembic, "current"], cwd=elsewhere, env=env)
    assert f"{head_revision()} (head)" in current.split("\n"), current
