"""Nothing heavy before the door: the shipped server reads a large body only after routing
and authentication admit it, against the route's own limit."""

import os
import select
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import serving

pytestmark = [
    pytest.mark.live,
    pytest.mark.backends("sqlite", reason="the server's door, whatever the database"),
]

HUGE = 200 * 1024 * 1024
CHUNK = b"\0" * (1 << 20)


def _post(port: int, path: str, declared: int, token: str | None, sent: int) -> bytes:
    """Send a request declaring ``declared`` body bytes, then ``sent`` of them as fast as
    the server takes them, and return its status line (the connection ours, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n{auth}\r\n".encode()
        )
        pushed = 0
        try:
            while pushed < sent and not select.select([sock], [], [], 0)[0]:
                pushed += sock.send(CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what is unsent is unread anyway
        if not select.select([sock], [], [], 10)[0]:
            return b"(no answer)"
        try:
            return sock.recv(4096).split(b"\r\n", 1)[0]
        except ConnectionResetError:
            return b"(reset)"


def _bytes_in(folder: Path) -> int:
    total = 0
    for entry in folder.iterdir():
        try:
            total += entry.stat().st_size
        except FileNotFoundError:
            continue
    return total


def test_unadmitted_bodies_are_never_read(
    database_url: str, api_token: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spool = tmp_path_factory.mktemp("spool")
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _bytes_in(spool))
            time.sleep(0.01)

    metrics = tmp_path_factory.mktemp("metrics")  # its files are not bodies
    environment = {"TMPDIR": str(spool), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    with serving(database_url, tmp_path_factory, **environment) as server:
        port = int(server.url.rsplit(":", 1)[1])
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            # Ten unauthenticated 200 MB bodies, each pushed as fast as the server takes.
            statuses = [_post(port, "/users", HUGE, None, HUGE) for _ in range(10)]
            # Nowhere to go, with a valid key: a 404, unread.
            missing = _post(port, "/nowhere", HUGE, api_token, 8 << 20)
            # Admitted, but over the route's own limit (1 MiB for JSON): a 413, unread.
            over = _post(port, "/users", 2 << 20, api_token, 0)
        finally:
            done.set()
            watcher.join()
    assert set(statuses) <= {b"HTTP/1.1 401 Unauthorized", b"(reset)"}, statuses
    assert statuses.count(b"HTTP/1.1 401 Unauthorized") >= 5, statuses
    assert missing in {b"HTTP/1.1 404 Not Found", b"(reset)"}, missing
    assert over.startswith(b"HTTP/1.1 413 "), over
    assert peak[0] == 0
    assert os.listdir(spool) == []
