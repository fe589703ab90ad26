"""Importing the settings or the models, or running alembic, builds no web app."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("flask_openapi3", "alembic", "asyncpg", "granian")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["app.config", "app.models"])
def test_importing_settings_or_models_loads_no_web_app(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not {name for name in imported if name.split(".")[0] in HEAVY}
    assert module in imported  # the measurement saw the import itself


def test_alembic_loads_settings_and_models_but_no_web_app() -> None:
    # Offline mode runs alembic/env.py and renders the migrations without a connection.
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "alembic", "upgrade", "head", "--sql"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert "CREATE TABLE user_account" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert {"app.config", "app.models", "app.db.base"} <= imported
    web_app = ("flask_openapi3", "asyncpg", "granian", "app.factory", "app.api", "app.db.session")
    assert not {name for name in imported if name.startswith(web_app)}
