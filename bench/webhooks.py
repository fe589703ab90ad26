"""Webhook delivery: throughput with one worker and with three, and the lag from commit to
delivery at a steady rate of writes, side by side in one run (PostgreSQL, loopback only).

Throughput: ``--events`` committed events over ``--resources`` users (round robin), one
endpoint on a local receiver (tests/webhook_receiver.py, a threaded HTTP server answering
200); the workers (``python -m app.worker``, default delivery settings, a round every
``--interval`` s) start, and the clock runs until every delivery is sent. Lag: events
committed one per transaction at ``--rate`` a second for ``--seconds``, one worker; the lag
of each is its arrival at the receiver less its commit (median and p99), for each worker
round interval given (sealing comes first, once a round: the interval bounds the lag).
Usage: .venv/bin/python -m bench.webhooks [--events 5000] [--resources 1000]
[--rate 200] [--seconds 20] [--intervals 5,0.5]
"""

import argparse
import base64
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench.run import fresh_database
from tests.helpers import ROOT, free_port, stop
from tests.webhook_receiver import Receiver, receiving

DB_NAME = "app_bench_webhooks"


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _prepare() -> str:
    """A fresh database at head; its URL."""
    url = fresh_database(DB_NAME)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return url


def _reset(url: str, receiver_url: str) -> None:
    """No events, no deliveries, one endpoint wanting every type."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute("DELETE FROM webhook_endpoint")
        conn.execute("DELETE FROM audit_event")
        conn.execute(
            "INSERT INTO webhook_endpoint (url, events, secret) VALUES (%s, '[\"*\"]', %s)",
            (receiver_url, secret),
        )


@contextmanager
def _workers(url: str, count: int, interval: float) -> Iterator[list[int]]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WORKER_INTERVAL": str(interval),
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "app.worker"],
            cwd=ROOT,
            env={**env, "WORKER_PORT": str(free_port())},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield [process.pid for process in started]
    finally:
        for process in started:  # ours, by pid: all asked at once, then each waited for
            process.terminate()
        for process in started:
            stop(process)


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes have used (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _sent(url: str) -> int:
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM webhook_delivery WHERE state = 'sent'").fetchone()
        return int(row[0]) if row else 0


def throughput(
    url: str, receiver: Receiver, workers: int, events: int, resources: int
) -> tuple[float, float]:
    """Deliveries a second, from the workers' start until every one is sent; and the
    workers' CPU per delivery (microseconds, start-up included)."""
    _reset(url, receiver.url("/ok"))
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_event (type, actor_kind, resource_type, resource_id, changes) "
            "SELECT 'user.updated', 'cli', 'user', 'b-' || (n %% %s), '{}' "
            "FROM generate_series(1, %s) AS n",
            (resources, events),
        )
    started = time.perf_counter()
    with _workers(url, workers, interval=0.2) as pids:
        deadline = started + 600
        while _sent(url) < events:
            if time.perf_counter() > deadline:
                raise RuntimeError("not delivered within 600 s")
            time.sleep(0.05)
        took = time.perf_counter() - started
        cpu = _cpu_seconds(pids)
    return events / took, cpu / events * 1e6


def lag(url: str, receiver: Receiver, interval: float, rate: int, seconds: int) -> list[float]:
    """Seconds from each event's commit to its arrival, at a steady ``rate`` of commits."""
    _reset(url, receiver.url("/ok"))
    committed: dict[int, float] = {}
    with _workers(url, 1, interval), psycopg.connect(_plain(url), autocommit=True) as conn:
        time.sleep(2)  # the worker up
        start = time.perf_counter()
        for n in range(rate * seconds):
            due = start + n / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            row = conn.execute(
                "INSERT INTO audit_event (type, actor_kind, resource_type, resource_id, changes) "
                "VALUES ('user.updated', 'cli', 'user', %s, '{}') RETURNING id",
                (f"l-{n % 1000}",),
            ).fetchone()
            assert row is not None
            committed[int(row[0])] = time.time()
        deadline = time.monotonic() + 120
        while len(receiver.on("/ok")) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.1)
    arrived = {int(r.webhook_id): r.at for r in receiver.on("/ok")}
    return [arrived[i] - at for i, at in committed.items() if i in arrived]


def main() -> None:
    """Print throughput for one worker and three, then the lag at a steady rate."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--resources", type=int, default=1_000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--intervals", default="5,0.5")
    args = parser.parse_args()
    url = _prepare()
    with receiving() as receiver:
        for workers in (1, 3):
            with receiver.lock:
                receiver.received.clear()
                receiver.tries.clear()
            per_second, cpu = throughput(url, receiver, workers, args.events, args.resources)
            print(
                f"throughput, {workers} worker(s): {per_second:6.0f} deliveries/s, "
                f"{cpu:5.0f} us worker CPU each "
                f"({args.events} events, {args.resources} resources, one endpoint)"
            )
        for interval in (float(v) for v in args.intervals.split(",")):
            with receiver.lock:
                receiver.received.clear()
                receiver.tries.clear()
            lags = sorted(lag(url, receiver, interval, args.rate, args.seconds))
            p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
            print(
                f"lag at {args.rate} writes/s, WORKER_INTERVAL={interval:g}: "
                f"median {statistics.median(lags) * 1000:6.0f} ms, p99 {p99 * 1000:6.0f} ms "
                f"({len(lags)} of {args.rate * args.seconds} delivered)"
            )


if __name__ == "__main__":
    main()
