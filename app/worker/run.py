"""The worker's rounds, its signals, and its own /healthz and /metrics.

One thread does the rounds; a small HTTP server on ``WORKER_PORT`` answers probes from
another. SIGTERM or SIGINT ends the round in progress, then the process (status 0). Several
workers may run at once on PostgreSQL and MariaDB: sealing takes the chain's head row lock,
so one seals while the others wait their turn and find nothing left.
"""

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings, current_settings
from app.db.failures import describe
from app.db.session import db
from app.models import AuditEvent
from app.scripts import script
from app.services import audit
from app.telemetry.logs import configure_logging
from app.worker import mail

log = logging.getLogger("app.worker")

# The worker's own registry: it is one process, never the server's multiprocess metrics.
REGISTRY = CollectorRegistry()
SEALED = Counter(
    "worker_sealed_events_total", "Change events sealed into the chain.", registry=REGISTRY
)
ROUNDS = Counter(
    "worker_rounds_total", "Rounds, by outcome (ok, failed).", ["outcome"], registry=REGISTRY
)
UNSEALED = Gauge(
    "worker_unsealed_events", "Change events committed and not sealed yet.", registry=REGISTRY
)
OLDEST = Gauge(
    "worker_oldest_unsealed_seconds",
    "Age of the oldest change event not sealed yet (0: none).",
    registry=REGISTRY,
)
for _metric in mail.METRICS:
    REGISTRY.register(_metric)


class Worker:
    """The rounds, and what the probes report of them."""

    def __init__(self, settings: Settings) -> None:
        self.interval = settings.WORKER_INTERVAL
        self.stopping = threading.Event()
        self.last_ok = time.monotonic()
        self.failing = False

    def healthy(self) -> bool:
        """A round succeeded within three intervals (a database outage makes it 503)."""
        return time.monotonic() - self.last_ok <= 3 * self.interval + 5

    def round(self) -> None:
        """Seal what has committed, then measure what is left; a failure is logged once."""
        try:
            SEALED.inc(audit.seal())
            mail.deliver()
            left, oldest = db.session.execute(
                select(func.count(), func.min(AuditEvent.occurred_at)).where(
                    AuditEvent.seq.is_(None)
                )
            ).one()
            db.session.rollback()
        except SQLAlchemyError as error:
            db.session.rollback()
            ROUNDS.labels("failed").inc()
            if not self.failing:
                log.error(
                    "worker round failed: %s; retrying every %ss", describe(error), self.interval
                )
            self.failing = True
            return
        if self.failing:
            log.info("worker rounds succeed again")
        self.failing = False
        ROUNDS.labels("ok").inc()
        UNSEALED.set(left)
        OLDEST.set(0 if oldest is None else max(0.0, time.time() - oldest.timestamp()))
        self.last_ok = time.monotonic()

    def run(self) -> None:
        """Rounds until asked to stop; a stop waits for the round in progress."""
        while not self.stopping.is_set():
            self.round()
            self.stopping.wait(self.interval)


def _probes(worker: Worker) -> type[BaseHTTPRequestHandler]:
    class Probes(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok = worker.healthy()
                body = json.dumps({"status": "ok" if ok else "failing"}).encode()
                self._answer(200 if ok else 503, "application/json", body)
            elif self.path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            else:
                self._answer(404, "application/json", b'{"status": "not found"}')

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a probe every few seconds is not worth a line

    return Probes


@contextmanager
def _serving_probes(worker: Worker, settings: Settings) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((settings.HOST, settings.WORKER_PORT), _probes(worker))
    thread = threading.Thread(target=server.serve_forever, name="probes", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    """Run the worker until SIGTERM or SIGINT."""
    with script() as _app:
        settings = current_settings()
        configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
        worker = Worker(settings)
        mail.announce(settings)

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info(
                "worker stopping (%s): finishing the round in progress", signal.Signals(signum).name
            )
            worker.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        with _serving_probes(worker, settings):
            log.info(
                "worker started: a round every %ss; /healthz and /metrics on http://%s:%s",
                settings.WORKER_INTERVAL,
                settings.HOST,
                settings.WORKER_PORT,
            )
            worker.run()
        log.info("worker stopped")
