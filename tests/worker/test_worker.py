"""``python -m app.worker`` on every backend: it seals the audit log's new events within a
round, answers its own /healthz and /metrics, and stops on SIGTERM after its round."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select, text

from app.db.session import db
from app.models import AuditEvent
from tests.factories import make_api_key, make_user
from tests.helpers import ROOT, free_port, require_search_side_table

pytestmark = pytest.mark.live


def _unsealed(app: Flask) -> int:
    with app.app_context():
        count = db.session.execute(
            select(func.count()).where(AuditEvent.seq.is_(None))
        ).scalar_one()
        db.session.rollback()
        return int(count)


@pytest.fixture
def worker(
    app: Flask, database_url: str, tmp_path: Path
) -> Iterator[tuple["subprocess.Popen[bytes]", str, Path]]:
    """The worker on this backend's database, a round every 0.2 s; its URL and log."""
    port = free_port()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WORKER_PORT": str(port),
        "WORKER_INTERVAL": "0.2",
        "LOG_FORMAT": "json",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:  # only the process this test started, by its pid
            process.kill()
            process.wait(timeout=10)


def _wait(condition: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_the_worker_seals_new_events_and_stops_on_sigterm(
    app: Flask, worker: tuple["subprocess.Popen[bytes]", str, Path]
) -> None:
    process, url, log = worker
    _wait(lambda: _healthy(url), "/healthz 200", log)
    make_api_key(app, ["users:read"], name="sealed-by-the-worker")
    make_user(app)
    _wait(lambda: _unsealed(app) == 0, "every event sealed", log)

    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    [sealed] = [ln for ln in metrics.splitlines() if ln.startswith("worker_sealed_events_total")]
    assert float(sealed.split()[1]) >= 1, metrics
    assert "worker_unsealed_events 0.0" in metrics
    assert "worker_mail_queued 0.0" in metrics
    assert httpx.get(f"{url}/nothing", timeout=5).status_code == 404

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    lines = log.read_text().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines), lines
    assert any("worker stopped" in line for line in lines), lines
    assert any("no SMTP_URL" in line for line in lines), lines  # it says where mail goes


@pytest.mark.backends("sqlite", reason="the schema check, whatever the database")
def test_the_worker_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "app.worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "migrat" in done.stderr.lower(), done.stderr


def _copied(app: Flask, user_id: int) -> bool:
    with app.app_context(), db.engine.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM user_search WHERE id = :id"), {"id": user_id})
        return found.first() is not None


@pytest.mark.backends(
    "mysql", "postgresql", reason="the search side table: MariaDB's, PostgreSQL's"
)
def test_the_worker_copies_new_users_into_the_search_side_table(
    app: Flask, worker: tuple["subprocess.Popen[bytes]", str, Path]
) -> None:
    with app.app_context():
        require_search_side_table(db.engine)
    _process, url, log = worker
    user = make_user(app)
    _wait(lambda: _copied(app, user.id), "the new user copied", log)
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    [copied] = [
        ln for ln in metrics.splitlines() if ln.startswith("worker_search_indexed_users_total")
    ]
    assert float(copied.split()[1]) >= 1, metrics
