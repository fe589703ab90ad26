"""Fault tests: a private PostgreSQL cluster, the shipped server in front, a bounded load."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.migrations import ROOT
from tests.faults.cluster import PrivateCluster
from tests.helpers import free_port


def _command(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A migrated private cluster on a port of its own, removed afterwards."""
    private = PrivateCluster(free_port())
    try:
        private.create()  # inside: a failed initdb still removes its folder
        env = {**os.environ, "DATABASE_URL": private.url}
        _command(str(Path(sys.executable).parent / "alembic"), "upgrade", "head", env=env)
        yield private
    finally:
        private.destroy()


@pytest.fixture(scope="module")
def token(cluster: PrivateCluster) -> str:
    """An API key with every scope on the private cluster."""
    env = {**os.environ, "DATABASE_URL": cluster.url}
    scopes = [a for s in ("users:read", "users:write") for a in ("--scope", s)]
    flask = str(Path(sys.executable).parent / "flask")
    return _command(flask, "--app", "app", "api-keys", "create", "faults", *scopes, env=env).strip()
