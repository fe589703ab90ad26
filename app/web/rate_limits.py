"""Rate limits per API key, and per client address for requests without a valid one:
counted in this process's memory by default, in Redis when RATE_LIMIT_STORAGE_URL names one
(one budget across processes and replicas).

The counting is the ``limits`` library's (its storages and fixed-window strategy, which
Flask-Limiter uses too); the hook around it is ours because Flask-Limiter's own cost ~140 us
of CPU a request, resolving route, blueprint and exemption rules we do not have. Measured
in process (GET by id, bench/cpu.py's requests, best of 5 rounds): 372 us without limits,
510 with Flask-Limiter, 399 with this.
"""

import logging
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.config import Settings
from app.errors import AppError

log = logging.getLogger(__name__)

# Probes of the orchestrator and the load balancer, and scrapes, are never limited.
_UNLIMITED_ENDPOINTS = frozenset({"ops.get_health", "ops.get_readiness", "ops.get_metrics"})
_EXTENSION = "rate_limits"  # in app.extensions
# A Redis that stops answering costs a request this many seconds at most; then this
# process counts in its own memory for the next RECOVERY_SECONDS, and tries Redis again.
_STORAGE_TIMEOUT_SECONDS = 1
RECOVERY_SECONDS = 30.0


class TooManyRequestsError(AppError):
    """Over the rate limit of the key (or the address)."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many requests: try again in {retry_after} s (Retry-After); "
            "RateLimit-Limit says how many a window allows."
        )
        self.headers = (("Retry-After", str(retry_after)),)


@dataclass
class _Budget:
    limit: int
    remaining: int
    reset_in: int


class RateLimits:
    """The limits of RATE_LIMIT over a storage, with this process's memory as a fallback."""

    def __init__(self, settings: Settings) -> None:
        self.items: list[RateLimitItem] = parse_many(settings.RATE_LIMIT)
        options: dict[str, float | str | bool] = {}
        if settings.RATE_LIMIT_STORAGE_URL.startswith(("redis://", "rediss://")):
            options = {
                "socket_timeout": _STORAGE_TIMEOUT_SECONDS,
                "socket_connect_timeout": _STORAGE_TIMEOUT_SECONDS,
            }
        self.shared = FixedWindowRateLimiter(
            storage_from_string(settings.RATE_LIMIT_STORAGE_URL, **options)
        )
        self.own: FixedWindowRateLimiter | None = None
        self.own_until = 0.0

    def _strategy(self) -> FixedWindowRateLimiter:
        if self.own is not None and time.monotonic() < self.own_until:
            return self.own
        return self.shared

    def _fall_back(self) -> FixedWindowRateLimiter:
        log.warning(
            "rate limit storage unreachable: counting in this process for %.0f s",
            RECOVERY_SECONDS,
            exc_info=True,
        )
        if self.own is None:
            self.own = FixedWindowRateLimiter(MemoryStorage())
        self.own_until = time.monotonic() + RECOVERY_SECONDS
        return self.own

    def count(self, who: str) -> _Budget:
        """Count one request of ``who``; raise TooManyRequestsError past any limit."""
        strategy = self._strategy()
        budgets = []
        for item in self.items:
            try:
                allowed = strategy.hit(item, who)
                stats = strategy.get_window_stats(item, who)
            except Exception:  # whatever the storage's failure: fall back, keep serving
                strategy = self._fall_back()
                allowed = strategy.hit(item, who)
                stats = strategy.get_window_stats(item, who)
            reset_in = max(0, int(stats.reset_time - time.time()) + 1)
            budget = _Budget(item.amount, stats.remaining, reset_in)
            if not allowed:
                g.rate_limit = budget
                raise TooManyRequestsError(reset_in)
            budgets.append(budget)
        return min(budgets, key=lambda budget: budget.remaining)


def _client() -> str:
    key = g.get("api_key")
    return f"key:{key.prefix}" if key is not None else f"address:{request.remote_addr}"


def count_request() -> None:
    """Count this request against its key's (or address's) budget; after authentication."""
    if request.endpoint in _UNLIMITED_ENDPOINTS or request.method == "OPTIONS":
        return
    limits: RateLimits = current_app.extensions[_EXTENSION]
    g.rate_limit = limits.count(_client())


def add_headers(response: Response) -> Response:
    """Say the budget left (IETF httpapi RateLimit header fields; reset in seconds)."""
    budget: _Budget | None = g.get("rate_limit")
    if budget is not None:
        response.headers["RateLimit-Limit"] = str(budget.limit)
        response.headers["RateLimit-Remaining"] = str(budget.remaining)
        response.headers["RateLimit-Reset"] = str(budget.reset_in)
    return response


def configure(app: Flask, settings: Settings) -> bool:
    """Set up the limits of RATE_LIMIT (empty: no limit); whether any limit is on."""
    if not settings.RATE_LIMIT:
        return False
    app.extensions[_EXTENSION] = RateLimits(settings)
    return True
