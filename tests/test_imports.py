"""Importing the settings or the models, or running alembic, builds no web app."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask.sansio.scaffold import find_package

import app.config

HEAVY = ("flask_openapi3", "alembic", "asyncpg", "granian")
# What a script reading the settings, or Alembic reading the models, must not load at all.
FLASK = ("flask", "werkzeug", "flask_sqlalchemy", "limits")
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


@pytest.mark.parametrize("module", ["app.config", "app.models"])
def test_importing_settings_or_models_loads_no_flask(module: str) -> None:
    code = f"import sys, {module}; print(*sys.modules, sep='\\n')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert module in loaded  # the listing is the one after the import
    assert not {name for name in loaded if name.split(".")[0] in FLASK}


def test_the_settings_find_the_package_as_flask_does() -> None:
    # app.config answers find_package's question itself, so as not to import Flask for it.
    assert find_package("app") == (app.config.paths._PREFIX, app.config.paths._PACKAGE_HOME)


def test_alembic_loads_settings_and_models_but_no_web_app() -> None:
    # Offline mode runs app/migrations/env.py and renders the migrations without a connection.
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
    # limits may load: the settings check RATE_LIMIT's notation with it.
    flask = {"flask", "werkzeug", "flask_sqlalchemy"}
    assert not {name for name in imported if name.split(".")[0] in flask}
