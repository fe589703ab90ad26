"""The worker's indexing duty on MariaDB with Mroonga and on PostgreSQL: each round copies
the users changed since the side table's watermark into it (app/db/user_search.py), off the
request path, so writes and imports pay nothing for SCIM's co and ew index (on PostgreSQL,
co shorter than a trigram). On SQLite it does nothing."""

import logging

from prometheus_client import Counter
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.db import user_search
from app.worker.metrics import REGISTRY
from app.worker.outage import Outage

log = logging.getLogger("app.worker")

INDEXED = Counter(
    "worker_search_indexed_users_total",
    "Users copied into the search side table (MariaDB, PostgreSQL).",
    registry=REGISTRY,
)


class Indexing:
    """Catch-up rounds of the search side table, and what the probes report of them."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.engine = engine
        self.settings = settings
        interval = settings.WORKER_INTERVAL
        # A failed round leaves searches exact, only reading more changed users.
        self.outage = Outage(
            log,
            f"search indexing failed: %s; retrying every {interval}s",
            "search indexing succeeds again",
            grace=3 * interval + 5,
        )

    def start(self) -> None:
        """Nothing runs beside the rounds."""

    def stop(self) -> None:
        """Nothing to wait for: the round in progress has ended."""

    def healthy(self) -> bool:
        """A round succeeded within three intervals."""
        return self.outage.healthy()

    def round(self) -> None:
        """Copy what changed since the watermark, where the side table exists."""
        try:
            if user_search.ready(self.engine):
                INDEXED.inc(user_search.catch_up(self.engine, self.settings))
        except SQLAlchemyError as error:
            self.outage.failed(error)
            return
        self.outage.succeeded()
