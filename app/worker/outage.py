"""How a duty tells an outage of the database: the moment it last reached it (its health
on /healthz), and the outage logged once, its first failure and its end, not every round."""

import logging
import time

from app.config import Settings
from app.db.failures import describe


class Outage:
    """One duty's reach of the database (sealing's rounds, mail's, webhook claims)."""

    def __init__(
        self, log: logging.Logger, failed: str, recovered: str | None, grace: float
    ) -> None:
        # ``failed`` takes the error's description for its one %s.
        self.log = log
        self.failed_message = failed
        self.recovered_message = recovered
        self.grace = grace
        self.last_ok = time.monotonic()
        self.failing = False

    def healthy(self) -> bool:
        """The database was reached within ``grace`` seconds."""
        return time.monotonic() - self.last_ok <= self.grace

    def failed(self, error: Exception) -> None:
        """Log the failure if it starts an outage."""
        if not self.failing:
            self.log.error(self.failed_message, describe(error))
        self.failing = True

    def succeeded(self) -> None:
        """Log the outage's end, if there was one; the duty is healthy again."""
        if self.failing and self.recovered_message is not None:
            self.log.info(self.recovered_message)
        self.failing = False
        self.last_ok = time.monotonic()


class Rounds:
    """What a duty that is only its rounds shares (sealing, mail, indexing): nothing runs
    beside the rounds, the round in progress has ended by ``stop``, and the duty is healthy
    while a round reached the database within three intervals (an outage makes /healthz
    503). Each keeps its own ``round``, which reports to ``self.outage``."""

    def __init__(
        self, settings: Settings, log: logging.Logger, failed: str, recovered: str
    ) -> None:
        self.settings = settings
        self.outage = Outage(log, failed, recovered, grace=3 * settings.WORKER_INTERVAL + 5)

    def start(self) -> None:
        """Nothing runs beside the rounds."""

    def stop(self) -> None:
        """Nothing to wait for: the round in progress has ended."""

    def healthy(self) -> bool:
        """A round reached the database within three intervals."""
        return self.outage.healthy()
