"""Prometheus metrics, with prometheus_client: requests by route template, pools, imports,
refused keys, the build; GET /metrics renders them.

Under the shipped server every worker process writes its own values to files in
PROMETHEUS_MULTIPROC_DIR (app.server.serve sets a fresh one before the workers start), and
/metrics, served by any worker, adds them all up: prometheus_client's multiprocess mode.
Elsewhere (flask run, the tests' app) the values live in this process.
"""

import os
from pathlib import Path
from typing import Any

from flask import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

from app.config import METRICS_DIR_VARIABLE

REQUESTS = Counter(
    "http_requests_total", "Requests answered, by route template, method and status.",
    ["route", "method", "status"],
)  # fmt: skip
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the app receiving a request to its response, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "http_requests_in_flight", "Requests the app is working on now.", multiprocess_mode="livesum"
)
POOL_SIZE = Gauge(
    "db_pool_size", "Connections each SQLAlchemy pool keeps (pool_size), summed over processes.",
    ["pool"], multiprocess_mode="livesum",
)  # fmt: skip
POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out", "SQLAlchemy pool connections in use by requests now.",
    ["pool"], multiprocess_mode="livesum",
)  # fmt: skip
POOL_OVERFLOW = Gauge(
    "db_pool_overflow", "SQLAlchemy pool connections open beyond pool_size now.",
    ["pool"], multiprocess_mode="livesum",
)  # fmt: skip
ASYNCPG_OPEN = Gauge(
    "asyncpg_pool_open", "asyncpg connections open (PostgreSQL only).",
    multiprocess_mode="livesum",
)  # fmt: skip
ASYNCPG_IN_USE = Gauge(
    "asyncpg_pool_in_use", "asyncpg connections in use now (PostgreSQL only).",
    multiprocess_mode="livesum",
)  # fmt: skip
IMPORT_ROWS = Counter(
    "user_import_rows_total", "Rows of user imports through HTTP, by outcome.", ["outcome"]
)
IMPORT_DURATION = Histogram(
    "user_import_duration_seconds", "Time an import took, reading to commit.",
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1200.0),
)  # fmt: skip
AUTH_FAILURES = Counter(
    "api_key_auth_failures_total",
    "Requests refused for their key: missing, malformed, rejected (unknown, wrong, expired "
    "or revoked), forbidden (a scope lacking).",
    ["kind"],
)
BUILD = Gauge(
    "app_build_info", "1, labelled with this release's version and migration head.",
    ["version", "migration_head"], multiprocess_mode="max",
)  # fmt: skip


def watch_pool(engine: Engine, name: str) -> None:
    """Keep the pool gauges of ``engine`` current as connections are checked out and in."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return  # an in-memory SQLite database's pool: nothing to count
    # Increments, not values: every pool of a process (and every process) adds its own.
    POOL_SIZE.labels(name).inc(pool.size())
    reported = {"overflow": 0}
    # The pool's children, looked up once: labels() locks and checks its values each call.
    overflow, in_use = POOL_OVERFLOW.labels(name), POOL_CHECKED_OUT.labels(name)

    def overflowed() -> None:
        now = max(pool.overflow(), 0)
        if now != reported["overflow"]:  # mostly it is not: no write (~2 us each)
            overflow.inc(now - reported["overflow"])
            reported["overflow"] = now

    def checked_out(*_: Any) -> None:
        in_use.inc()
        overflowed()

    def checked_in(*_: Any) -> None:
        in_use.dec()
        overflowed()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)


def asyncpg_use(open_connections: int, in_use: int) -> None:
    """Record the asyncpg pool's connections (open, and in use) after an acquire or release."""
    ASYNCPG_OPEN.set(open_connections)
    ASYNCPG_IN_USE.set(in_use)


def imported(created: int, skipped: int, seconds: float) -> None:
    """Count one import's rows and time."""
    IMPORT_ROWS.labels("created").inc(created)
    IMPORT_ROWS.labels("skipped").inc(skipped)
    IMPORT_DURATION.observe(seconds)


def auth_failed(kind: str) -> None:
    """Count a request refused for its key."""
    AUTH_FAILURES.labels(kind).inc()


def _forget_dead_workers(folder: Path) -> None:
    # A worker the server replaced left its gauges' files: its in-flight requests and pool
    # connections would count for ever. prometheus_client drops them when told the process
    # died; its counters stay in the sums, as counters must.
    pids = {int(f.stem.rsplit("_", 1)[1]) for f in folder.glob("gauge_live*_*.db")}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        except PermissionError:
            continue  # alive, someone else's


def render() -> Response:
    """The metrics in Prometheus' text format: every worker's, under the shipped server."""
    if METRICS_DIR_VARIABLE in os.environ:
        _forget_dead_workers(Path(os.environ[METRICS_DIR_VARIABLE]))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def record_build(version: str, migration_head: str | None) -> None:
    """Say which release and migration head this process serves (app_build_info)."""
    BUILD.labels(version, migration_head or "none").set(1)
