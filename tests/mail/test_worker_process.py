"""``python -m app.worker`` sends the mail a request queued to a real SMTP server, on every
backend, says where mail goes at start-up (never the URL's password), and counts it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.mailsink import Sink
from tests.factories import make_user
from tests.helpers import ROOT, free_port
from tests.mail.conftest import SMTP_PASSWORD, SMTP_USER
from tests.mail.helpers import received

pytestmark = pytest.mark.live


def test_the_worker_process_sends_a_queued_invitation(
    app: Flask,
    client: FlaskClient,
    database_url: str,
    smtp_sink: tuple[Sink, int],
    tmp_path: Path,
) -> None:
    user = make_user(app, email="proc@example.com")
    assert client.post(f"/users/{user.id}/invitation").status_code == 202
    port, log = free_port(), tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WORKER_PORT": str(port),
        "WORKER_INTERVAL": "0.2",
        "SMTP_URL": f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{smtp_sink[1]}",
        "PUBLIC_URL": "https://front.example",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while not received(smtp_sink[0], "proc@example.com"):
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            assert process.poll() is None, log.read_text(errors="replace")
            time.sleep(0.1)
        # The sink has the message once the worker's DATA is accepted; the worker counts it
        # after that, once the message's row says so: read until it has.
        while "worker_mail_sent_total 1.0" not in (metrics := _metrics(port)):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.1)
    finally:
        if process.poll() is None:  # only the process this test started, by its pid
            process.terminate()
            process.wait(timeout=10)
    assert "worker_mail_sent_total 1.0" in metrics
    text = log.read_text(errors="replace")
    assert f"mail: sent by smtp to 127.0.0.1:{smtp_sink[1]}" in text
    assert SMTP_PASSWORD not in text


def _metrics(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
