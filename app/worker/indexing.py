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
from app.worker.outage import Rounds

log = logging.getLogger("app.worker")

INDEXED = Counter(
    "worker_search_indexed_users_total",
    "Users copied into the search side table (MariaDB, PostgreSQL).",
    registry=REGISTRY,
)


class Indexing(Rounds):
    """Catch-up rounds of the search side table, and what the probes report of them."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        # A failed round leaves searches exact, only reading more changed users.
        failed = f"search indexing failed: %s; retrying every {settings.WORKER_INTERVAL}s"
        super().__init__(settings, log, failed, "search indexing succeeds again")
        self.engine = engine

    def round(self) -> None:
        """Copy what changed since the watermark, where the side table exists."""
        try:
            if user_search.ready(self.engine):
                INDEXED.inc(user_search.catch_up(self.engine, self.settings))
        except SQLAlchemyError as error:
            self.outage.failed(error)
            return
        self.outage.succeeded()
