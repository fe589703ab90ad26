"""Nobody without a key takes the shipped server down: 3,000 silent connections, 1,100 slow
header senders and 1,100 dripping bodies from one address, while another client's /healthz
and authenticated GET stay under a second; the server closes the attackers' connections
and serves on with no restart."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.faults.helpers import FIGURES
from tests.helpers import free_port, server_env, wait_until_serving
from tests.server.floods import Attack, dripping_body, flood, silent, slow_headers

pytestmark = [
    pytest.mark.live,
    pytest.mark.faults,
    pytest.mark.backends("sqlite", reason="the server's guards, whatever the database"),
]

# All at once, from one address.
FLOOD: dict[Attack, int] = {silent: 3000, slow_headers: 1100, dripping_body: 1100}
# The header and body timers are 10 s by default: each flood lasts past them.
SECONDS = 16


def test_floods_from_one_address_leave_others_served(
    database_url: str, api_token: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path),
        # The default sizing on this machine: 2 processes a CPU.
        **server_env(port, workers=4, threads=4),
    }
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.server"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, log)
        result = asyncio.run(flood(port, api_token, FLOOD, SECONDS))
        FIGURES.append(
            "3,000 silent, 1,100 slow-header and 1,100 dripping-body connections at once: "
            f"opened={result.opened} closed_by_server={result.closed_by_server} "
            f"refused={result.refused} probes={len(result.probe_seconds)} "
            f"slowest_probe_s={result.slowest():.2f}"
        )
        assert result.probe_failures == [], result.probe_failures[:5]
        assert result.slowest() < 1.0
        assert result.closed_by_server + result.refused == sum(FLOOD.values())
        # No restart: the same master serves on.
        assert process.poll() is None
        headers = {"Authorization": f"Bearer {api_token}"}
        assert httpx.get(f"{base}/users", headers=headers, timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
