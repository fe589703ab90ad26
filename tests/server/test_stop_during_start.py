"""No process outlives the shipped server: a SIGTERM at any moment of its start-up stops
every worker, one still building the app included, and frees the port."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import free_port, server_env

pytestmark = [
    pytest.mark.live,
    pytest.mark.faults,
    pytest.mark.backends("sqlite", "postgresql", reason="the embedded default and production's"),
]

# Ten moments in the first three seconds: before, while and after the workers build the app.
MOMENTS = [0.05, 0.2, 0.4, 0.6, 0.9, 1.2, 1.6, 2.0, 2.5, 2.9]
WORKERS = 3


def _tagged(tag: str) -> list[int]:
    """Pids of the processes whose environment carries ``tag`` (ours alone, by design)."""
    pids = []
    needle = f"APP_TEST_RUN={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if needle in environ.split(b"\0") and state != "Z":
            pids.append(int(entry.name))
    return pids


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(entry.name))
    return children


def _start(database_url: str, folder: Path, tag: str, port: int) -> "subprocess.Popen[bytes]":
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(folder),
        "APP_TEST_RUN": tag,
        **server_env(port, workers=WORKERS, threads=2),
    }
    with (folder / f"server-{tag}.log").open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "app.server"], env=env, stdout=sink, stderr=sink
        )


def _gone(tag: str, seconds: float) -> list[int]:
    """Wait until no process of ``tag`` is alive; kill (by pid, ours by the tag) and return
    those still alive after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (alive := _tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return alive


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_at_any_moment_of_start_up_leaves_nothing_behind(
    database_url: str, tmp_path: Path
) -> None:
    leftovers: dict[float, list[int]] = {}
    for moment in MOMENTS:
        tag, port = uuid.uuid4().hex, free_port()
        process = _start(database_url, tmp_path, tag, port)
        time.sleep(moment)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        # The master is gone: its workers must be too, within a moment, and the port free.
        if alive := _gone(tag, 5):
            leftovers[moment] = alive
        assert _port_free(port) or moment in leftovers
    assert leftovers == {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_told_to_stop_while_it_starts_stops(database_url: str, tmp_path: Path) -> None:
    # What the master does to each worker on SIGTERM, done to one still building the app: it
    # inherited the master's handler, which swallowed the signal, and it went on to serve.
    tag, port = uuid.uuid4().hex, free_port()
    process = _start(database_url, tmp_path, tag, port)
    try:
        deadline = time.monotonic() + 10
        while not (workers := _children(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert workers, "no worker started"
        time.sleep(0.1)  # inside the factory: the app takes about a second to build
        os.kill(workers[0], signal.SIGTERM)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{workers[0]}").exists() and time.monotonic() < deadline:
            stat = Path(f"/proc/{workers[0]}/stat").read_text(errors="replace")
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                break  # dead, not yet reaped by the master
            time.sleep(0.05)
        else:
            assert not Path(f"/proc/{workers[0]}").exists(), "the worker swallowed SIGTERM"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        assert _gone(tag, 5) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_with_a_master_that_is_killed(database_url: str, tmp_path: Path) -> None:
    # Nothing stops a worker whose master died without stopping it (a SIGKILL, a crash).
    tag, port = uuid.uuid4().hex, free_port()
    process = _start(database_url, tmp_path, tag, port)
    deadline = time.monotonic() + 10
    while len(_children(process.pid)) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    process.kill()
    process.wait(timeout=10)
    assert _gone(tag, 5) == []
    assert _port_free(port)
