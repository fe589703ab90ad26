"""The worker's sealing duty: each round links the audit log's committed events into the
chain (app/services/audit.py), which also fans them out to webhook endpoints."""

import logging
import time

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.db.session import db
from app.models import AuditEvent
from app.services import audit
from app.worker.metrics import REGISTRY
from app.worker.outage import Rounds

log = logging.getLogger("app.worker")

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


class Sealing(Rounds):
    """Sealing rounds, and what the probes report of them."""

    def __init__(self, settings: Settings) -> None:
        interval = settings.WORKER_INTERVAL
        failed = f"worker round failed: %s; retrying every {interval}s"
        super().__init__(settings, log, failed, "worker rounds succeed again")

    def round(self) -> None:
        """Seal what has committed, then measure what is left; a failure is logged once."""
        try:
            SEALED.inc(audit.seal())
            left, oldest = db.session.execute(
                select(func.count(), func.min(AuditEvent.occurred_at)).where(
                    AuditEvent.seq.is_(None)
                )
            ).one()
            db.session.rollback()
        except SQLAlchemyError as error:
            db.session.rollback()
            ROUNDS.labels("failed").inc()
            self.outage.failed(error)
            return
        ROUNDS.labels("ok").inc()
        UNSEALED.set(left)
        OLDEST.set(0 if oldest is None else max(0.0, time.time() - oldest.timestamp()))
        self.outage.succeeded()
