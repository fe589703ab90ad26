"""The worker: its duties, its signals, and its own /healthz and /metrics.

A duty is a module: sealing (app/worker/sealing.py) works in rounds on this thread, every
``WORKER_INTERVAL``; webhook delivery (app/worker/webhooks.py) runs continuously on its own
event loop and measures its queue in the rounds. A small HTTP server on ``WORKER_PORT``
answers probes from another thread. SIGTERM or SIGINT ends the round in progress, lets the
deliveries in flight finish (each bounded by ``WEBHOOK_TIMEOUT``), then the process (status
0). Several workers may run at once on PostgreSQL and MariaDB: sealing takes the chain's
head row lock, so one seals while the others wait their turn and find nothing left, and
deliveries are leased with ``FOR UPDATE SKIP LOCKED`` (app/services/outbox.py).
"""

import json
import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.config import Settings, current_settings
from app.db.session import db
from app.scripts import script
from app.telemetry.logs import configure_logging
from app.worker.indexing import Indexing
from app.worker.mail import Mailing
from app.worker.metrics import REGISTRY
from app.worker.sealing import Sealing
from app.worker.webhooks import Deliveries

log = logging.getLogger("app.worker")


class Duty(Protocol):
    """What the worker runs: ``start`` before the first round, ``round`` every interval on
    the rounds thread, ``stop`` after the last (waiting for its work in flight)."""

    def start(self) -> None: ...

    def round(self) -> None: ...

    def healthy(self) -> bool: ...

    def stop(self) -> None: ...


class Worker:
    """The duties' rounds, and what the probes report of them."""

    def __init__(self, settings: Settings, duties: Sequence[Duty]) -> None:
        self.interval = settings.WORKER_INTERVAL
        self.duties = duties
        self.stopping = threading.Event()

    def healthy(self) -> bool:
        """Every duty reached the database lately (an outage makes it 503)."""
        return all(duty.healthy() for duty in self.duties)

    def round(self) -> None:
        """One round of every duty."""
        for duty in self.duties:
            duty.round()

    def run(self) -> None:
        """Rounds until asked to stop; a stop waits for the round in progress, then for
        each duty's work in flight."""
        for duty in self.duties:
            duty.start()
        try:
            while not self.stopping.is_set():
                self.round()
                self.stopping.wait(self.interval)
        finally:
            for duty in self.duties:
                duty.stop()


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
        duties: list[Duty] = [
            Sealing(settings),
            Deliveries(settings, db.engine),
            Mailing(settings),
            Indexing(settings, db.engine),
        ]
        worker = Worker(settings, duties)

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info(
                "worker stopping (%s): finishing the round and the deliveries in flight",
                signal.Signals(signum).name,
            )
            worker.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        with _serving_probes(worker, settings):
            log.info(
                "worker started: a round every %ss, up to %s webhook deliveries at once; "
                "/healthz and /metrics on http://%s:%s",
                settings.WORKER_INTERVAL,
                settings.WEBHOOK_CONCURRENCY,
                settings.HOST,
                settings.WORKER_PORT,
            )
            worker.run()
        log.info("worker stopped")
