"""Fault-test helpers: the server's settings, the shipped server on the cluster, a load."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.config import Settings
from app.db import deadlines
from tests.faults.cluster import PrivateCluster
from tests.helpers import free_port, server_env, wait_until_serving

WORKERS, THREADS = 2, 4
# Request deadlines short enough for a test to outwait; the server's own settings.
FAULT_SETTINGS = {
    "DB_STATEMENT_TIMEOUT": "2",
    "DB_LOCK_TIMEOUT": "1",
    "DB_CONNECT_TIMEOUT": "2",
    "DB_POOL_TIMEOUT": "2",
    "BODY_IDLE_TIMEOUT": "3",
    "HEADER_READ_TIMEOUT": "10",
}
# What a client of a fault test waits at most: longer than any deadline, so a hang shows.
CLIENT_TIMEOUT = 15.0


def deadline() -> float:
    """The longest a request may take under these settings before its 503."""
    settings = Settings.model_validate(
        {k: v for k, v in FAULT_SETTINGS.items()}  # noqa: C416 - typed from strings
    )
    # Connect (new connection) or pool wait, then the client-side deadline, and a tick.
    client = deadlines.client_deadline(settings)
    waits = settings.DB_CONNECT_TIMEOUT + client
    return max(waits, settings.DB_POOL_TIMEOUT + client) + 0.5


@dataclass
class Server:
    """The shipped server process on the private cluster."""

    process: "subprocess.Popen[bytes]"
    url: str
    log_path: Path

    def workers(self) -> list[int]:
        """The worker processes granian forked."""
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in found.stdout.split()]

    def log(self) -> str:
        """The end of the server's log."""
        return self.log_path.read_text(errors="replace")[-5000:]


@contextmanager
def serving(cluster: PrivateCluster, tmp_path: Path, grace: int = 10) -> Iterator[Server]:
    """Start the shipped server on the cluster; stop it (by its pid) afterwards."""
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url,
        "INSTANCE_PATH": str(tmp_path),
        **server_env(port, WORKERS, THREADS),
        **FAULT_SETTINGS,
        "GRACEFUL_TIMEOUT": str(grace),
    }
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.server"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_serving(server.url, process, log_path)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@dataclass
class Sample:
    """One request of a load: when it started, how long it took, and how it ended."""

    started: float
    took: float
    outcome: str  # a status code, or the transport error's name


@dataclass
class Load:
    """Requests sent by a few threads until stopped; bounded by time and count."""

    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def between(self, start: float, end: float) -> list[Sample]:
        """The samples that started in this window (monotonic seconds)."""
        return [s for s in self.samples if start <= s.started < end]

    @staticmethod
    def outcomes(samples: list[Sample]) -> Counter[str]:
        """How the samples ended, counted."""
        return Counter(s.outcome for s in samples)


@contextmanager
def load(
    send: Callable[[httpx.Client, int], httpx.Response],
    threads: int = 4,
    seconds: float = 60.0,
    new_connections: bool = False,
) -> Iterator[Load]:
    """Run ``send`` in a loop on a few threads until the block ends (``seconds`` at most)."""
    result = Load()
    limit = time.monotonic() + seconds

    def run(worker: int) -> None:
        headers = {"Connection": "close"} if new_connections else {}
        with httpx.Client(timeout=CLIENT_TIMEOUT, headers=headers) as client:
            n = 0
            while not result.stop.is_set() and time.monotonic() < limit and n < 100_000:
                n += 1
                started = time.monotonic()
                try:
                    outcome = str(send(client, worker * 1_000_000 + n).status_code)
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                    time.sleep(0.05)
                result.samples.append(Sample(started, time.monotonic() - started, outcome))

    pool = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    try:
        yield result
    finally:
        result.stop.set()
        for thread in pool:
            thread.join(timeout=CLIENT_TIMEOUT + 5)


FIGURES: list[str] = []


def figures_line(name: str, figures: dict[str, object]) -> str:
    """A check's figures as one line: ``name: key=value, ...``."""
    return f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items())


def report(name: str, figures: dict[str, object]) -> None:
    """Keep a fault test's figures for the summary at the end of the run."""
    FIGURES.append(figures_line(name, figures))
