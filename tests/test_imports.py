"""Importing the settings or the models (as alembic and scripts do) builds no web app."""

import subprocess
import sys

import pytest

HEAVY = ("flask_openapi3", "alembic", "asyncpg", "granian")


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
