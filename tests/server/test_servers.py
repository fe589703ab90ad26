"""The loops and the asyncpg pool under the shipped server: made in each forked worker,
serving, and shut down cleanly on SIGTERM."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, server_env, wait_until_serving

pytestmark = pytest.mark.live


def test_shipped_server_serves_async_views_and_stops_cleanly(
    backend: str, database_url: str, api_token: str, tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path),
        **server_env(port),
    }
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {api_token}"}
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.server"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until_serving(base, process, log_path)
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for _ in range(30):
                # /readyz goes through the asyncpg pool on PostgreSQL, /users through run_db.
                assert client.get("/readyz").status_code == 200
                assert client.get("/users").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)
    output = log_path.read_text()
    assert returncode == 0, output
    for sign in ("Traceback", "was destroyed but it is pending", "Event loop is closed"):
        assert sign not in output, output
