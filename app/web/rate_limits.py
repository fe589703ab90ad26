"""Rate limits per API key, and per client address for requests without a valid one.

Where the counts live (RATE_LIMIT_STORAGE_URL): by default a SQLite file in the instance
folder, so that the budget holds across the processes of one server without any other
service (RATE_LIMIT=5/minute once let 20 through a minute with 4 processes counting in their
own memory); redis://... for one budget across every replica; memory:// for this process
alone. If the storage fails (Redis gone, the file unwritable), each process counts in its
own memory for RECOVERY_SECONDS, then tries it again.

In memory we count ourselves (MemoryCounter), not with ``limits``' MemoryStorage: that one
keeps a timer thread going to expire its keys, a new thread about every 10 ms per process
while any key lives, which is most of the time under load.

Why our own hook and not Flask-Limiter: it costs ~140 us of CPU a request, resolving route,
blueprint and exemption rules we do not have. Measured in process (GET by id, bench/cpu.py's
requests, best of 5 rounds): 372 us without limits, 510 with Flask-Limiter, 399 with this
(in memory). The ``limits`` library's storages still count for Redis (and Memcached).
"""

import logging
import os
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string

from app.config import Settings
from app.context import current_g, current_request
from app.errors import AppError

log = logging.getLogger(__name__)

# Probes of the orchestrator and the load balancer, and scrapes, are never limited.
_UNLIMITED_ENDPOINTS = frozenset({"ops.get_health", "ops.get_readiness", "ops.get_metrics"})
_EXTENSION = "rate_limits"  # in app.extensions
_SIGN_IN_ACCOUNT = "sign_in_limits_account"  # in app.extensions
_SIGN_IN_ADDRESS = "sign_in_limits_address"  # in app.extensions
_MAIL_TARGET = "mail_limits_target"  # in app.extensions
_MAIL_ADDRESS = "mail_limits_address"  # in app.extensions
# A storage that stops answering (Redis gone, the SQLite file locked) costs a request this
# many seconds at most; then this process counts in its own memory for the next
# RECOVERY_SECONDS, and tries the storage again.
_STORAGE_TIMEOUT_SECONDS = 1
RECOVERY_SECONDS = 30.0
SQLITE_SCHEME = "sqlite:///"
_PURGE_EVERY_SECONDS = 60.0  # closed windows are dropped at most this often


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


class Counter(Protocol):
    """Fixed-window counts: a window opens at a key's first hit and lasts ``expiry`` s.

    Our interface, not a ``limits`` Storage, so that a hit answers its count and the end of
    its window at once: ``limits``' FixedWindowRateLimiter asks a storage three times a
    request (incr, get, get_expiry), which for the SQLite file is three statements (~52 us
    against ~24 us for the one below) and for Redis three round trips where two do.
    """

    def hit(self, key: str, expiry: int) -> tuple[int, float]:
        """Count one request of ``key``: its count in the window, when the window ends."""
        ...

    def peek(self, key: str) -> int:
        """The count of ``key`` in its window (0 without one), counting nothing."""
        ...


class MemoryCounter:
    """Counts in this process's memory, windows as the other counters keep them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._windows: dict[str, list[float]] = {}  # key -> [count, end of its window]
        self._lock = threading.Lock()
        self._purge_at = 0.0

    def hit(self, key: str, expiry: int) -> tuple[int, float]:
        """Count one request of ``key``: its count in the window, when the window ends."""
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or window[1] <= now:
                window = self._windows[key] = [0, now + expiry]
            window[0] += 1
            if now >= self._purge_at:
                # Windows long closed (clients gone quiet), dropped in one pass a minute
                # rather than by a timer: no thread, and nothing to do between requests.
                self._purge_at = now + _PURGE_EVERY_SECONDS
                for gone in [k for k, (_, ends) in self._windows.items() if ends <= now]:
                    del self._windows[gone]
            return int(window[0]), window[1]

    def peek(self, key: str) -> int:
        """The count of ``key`` in its window (0 without one), counting nothing."""
        window = self._windows.get(key)
        return int(window[0]) if window is not None and window[1] > self.clock() else 0


class LimitsCounter:
    """A ``limits`` storage (Redis, Memcached), counted the way its fixed window counts."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def hit(self, key: str, expiry: int) -> tuple[int, float]:
        """Count one request of ``key``: its count in the window, when the window ends."""
        return self.storage.incr(key, expiry), self.storage.get_expiry(key)

    def peek(self, key: str) -> int:
        """The count of ``key`` in its window (0 without one), counting nothing."""
        return self.storage.get(key)


# One statement a hit: SQLite's UPSERT is atomic under its write lock, whichever process
# runs it, and RETURNING answers the count and the window's end in the same statement.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hits"
    " (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID"
)
_HIT = (
    "INSERT INTO hits (key, count, expires_at) VALUES (?1, 1, ?2 + ?3)"
    " ON CONFLICT (key) DO UPDATE SET"
    " count = CASE WHEN expires_at > ?2 THEN count + 1 ELSE 1 END,"
    " expires_at = CASE WHEN expires_at > ?2 THEN expires_at ELSE excluded.expires_at END"
    " RETURNING count, expires_at"
)
_PEEK = "SELECT count FROM hits WHERE key = ?1 AND expires_at > ?2"
_PURGE = "DELETE FROM hits WHERE expires_at <= ?1"


class SQLiteCounter:
    """Counts in a SQLite file that every process of this server opens (WAL, UPSERT).

    Chosen by measurement among what a server's processes can share without another
    service: CPU time (time.process_time) of 20,000 calls over 100 clients, best of 5
    rounds, one process, a 2-CPU VM on ext4, SQLite 3.40. RateLimits.count() over this
    file: ~33 us (in memory: ~6), of which the UPSERT ~24 us; 4 processes hitting one key
    at once ~45 us each, and not one hit lost or counted twice. The alternatives: the
    app's own database, ~120 us of CPU and a network round trip (a PostgreSQL UPSERT); an
    mmap'd table under an fcntl lock, ~6 us, but a hash table of our own to size, probe,
    evict and keep whole when a worker dies mid-write, which SQLite's journal does for us.
    ``limits`` 5.8 has no storage of this kind (memory, Redis, Memcached, MongoDB only).
    Against ~1,200 us of CPU for a GET by id (bench/cpu.py), the file costs ~2%.

    One connection a thread (sqlite3 connections are not shared across threads) and a
    process (a forked child opens its own); opened at the first hit, so that building the
    app (a CLI command, a check) leaves no file behind. The file must be on a local disk:
    WAL shares its index through memory the processes map, which a network share cannot.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock  # wall-clock seconds: the same in every process
        self._local = threading.local()
        self._purge_at = 0.0

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=_STORAGE_TIMEOUT_SECONDS, isolation_level=None
            )
            # WAL: readers never wait for the writer; NORMAL: no fsync at each commit, and
            # the file stays whole after a crash (counts of a minute are not worth an fsync).
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
            local.connection, local.pid = connection, os.getpid()
        connection_of_thread: sqlite3.Connection = local.connection
        return connection_of_thread

    def hit(self, key: str, expiry: int) -> tuple[int, float]:
        """Count one request of ``key``: its count in the window, when the window ends."""
        connection = self._connection()
        now = self.clock()
        # Parameters by position: ~2 us less a call than by name.
        count, expires_at = connection.execute(_HIT, (key, now, expiry)).fetchone()
        if now >= self._purge_at:
            # Rows of windows long closed (clients gone quiet): bounded by the clients of
            # the longest window, whoever runs this (a race runs it twice, harmlessly).
            self._purge_at = now + _PURGE_EVERY_SECONDS
            connection.execute(_PURGE, (now,))
        return int(count), float(expires_at)

    def peek(self, key: str) -> int:
        """The count of ``key`` in its window (0 without one), counting nothing."""
        row = self._connection().execute(_PEEK, (key, self.clock())).fetchone()
        return int(row[0]) if row is not None else 0


def _around(item: RateLimitItem) -> tuple[str, str]:
    return f"{item.namespace}/", f"/{item.amount}/{item.multiples}/{item.GRANULARITY.name}"


def counter_for(url: str) -> Counter:
    """The counter a RATE_LIMIT_STORAGE_URL names: sqlite:///<file>, memory://, or a
    ``limits`` one."""
    if url.startswith(SQLITE_SCHEME):
        return SQLiteCounter(Path(url.removeprefix(SQLITE_SCHEME)))
    if url.startswith("memory://"):
        return MemoryCounter()
    options: dict[str, float | str | bool] = {}
    if url.startswith(("redis://", "rediss://")):
        options = {
            "socket_timeout": _STORAGE_TIMEOUT_SECONDS,
            "socket_connect_timeout": _STORAGE_TIMEOUT_SECONDS,
        }
    storage = storage_from_string(url, **options)
    if not isinstance(storage, Storage):  # async+...: our hooks run on the app's threads
        msg = f"RATE_LIMIT_STORAGE_URL: {url.partition('://')[0]} is an async storage"
        raise ValueError(msg)
    return LimitsCounter(storage)


class RateLimits:
    """The limits of RATE_LIMIT (or ``limit``) over a counter, with this process's memory as
    a fallback."""

    def __init__(self, settings: Settings, limit: str | None = None) -> None:
        self.items: list[RateLimitItem] = parse_many(
            settings.RATE_LIMIT if limit is None else limit
        )
        # Worked out once: limits' key_for() around a name (its keys, as an older release's).
        self._keyed = [(item, *_around(item), item.get_expiry()) for item in self.items]
        self.shared = counter_for(settings.rate_limit_storage_url)
        self.own: Counter | None = None
        self.own_until = 0.0

    def _counter(self) -> Counter:
        if self.own is not None and time.monotonic() < self.own_until:
            return self.own
        return self.shared

    def _fall_back(self) -> Counter:
        log.warning(
            "rate limit storage unreachable: counting in this process for %.0f s",
            RECOVERY_SECONDS,
            exc_info=True,
        )
        if self.own is None:
            self.own = MemoryCounter()
        self.own_until = time.monotonic() + RECOVERY_SECONDS
        return self.own

    def count(self, who: str) -> _Budget:
        """Count one request of ``who``; raise TooManyRequestsError past any limit."""
        counter = self._counter()
        budgets = []
        for item, before, after, expiry in self._keyed:
            key = before + who + after
            try:
                used, ends = counter.hit(key, expiry)
            except Exception:  # whatever the storage's failure: fall back, keep serving
                counter = self._fall_back()
                used, ends = counter.hit(key, expiry)
            reset_in = max(0, int(ends - time.time()) + 1)
            budget = _Budget(item.amount, max(0, item.amount - used), reset_in)
            if used > item.amount:
                g.rate_limit = budget
                raise TooManyRequestsError(reset_in)
            budgets.append(budget)
        return min(budgets, key=lambda budget: budget.remaining)

    def spent(self, who: str) -> bool:
        """Whether ``who`` has no budget left in some window (nothing is counted)."""
        counter = self._counter()
        for item, before, after, _ in self._keyed:
            key = before + who + after
            try:
                used = counter.peek(key)
            except Exception:  # as in count()
                counter = self._fall_back()
                used = counter.peek(key)
            if used >= item.amount:
                return True
        return False


def _address() -> str:
    return f"address:{request.remote_addr}"


def _client(here: Any) -> str:
    key = here.get("api_key")
    if key is not None:
        return f"key:{key.prefix}"
    principal = here.get("principal")  # a user's session: the user's budget, whichever session
    return f"user:{principal.user_id}" if principal is not None else _address()


def _limits() -> RateLimits | None:
    req = current_request()
    if req.endpoint in _UNLIMITED_ENDPOINTS or req.method == "OPTIONS":
        return None
    limits: RateLimits | None = current_app.extensions.get(_EXTENSION)
    return limits


def address_has_budget() -> bool:
    """Whether this request's address may still spend: asked before a key is looked up.

    A request without a valid key counts against its address; once the address is spent,
    a key this process has not verified before is refused unchecked (count_request then
    answers 429), so that guessing, or a wrong key retried, costs no database lookup.
    """
    limits = _limits()
    return limits is None or not limits.spent(_address())


def count_request() -> None:
    """Count this request against its key's (or address's) budget; after authentication."""
    limits = _limits()
    if limits is not None:
        here = current_g()  # looked up once, not thrice
        here.rate_limit = limits.count(_client(here))


def _count_pair(kind: str, pair: tuple[tuple[str, str], ...]) -> None:
    for extension, who in pair:
        limits: RateLimits | None = current_app.extensions.get(extension)
        if limits is not None:
            # Not g.rate_limit: the headers keep saying the request budget, unless refused.
            limits.count(f"{kind}:{who}")


def _folded(name: str) -> str:
    return unicodedata.normalize("NFC", name).lower()


def count_sign_in(login: str) -> None:
    """Count a sign-in attempt against its address and the account name it gives (any
    letter case); raise TooManyRequestsError (429, Retry-After) past either budget."""
    _count_pair(
        "sign-in",
        ((_SIGN_IN_ADDRESS, _address()), (_SIGN_IN_ACCOUNT, f"account:{_folded(login)}")),
    )


def count_mail(email: str) -> None:
    """Count a request that mails ``email`` (a reset, a sign-up, a user's own change of
    address) against the client's address and that email (any letter case), before any
    other work; raise TooManyRequestsError past either budget, whether the email is known
    or not (the same answer for both)."""
    _count_pair("mail", ((_MAIL_ADDRESS, _address()), (_MAIL_TARGET, f"email:{_folded(email)}")))


def add_headers(response: Response) -> Response:
    """Say the budget left (IETF httpapi RateLimit header fields; reset in seconds)."""
    budget: _Budget | None = g.get("rate_limit")
    if budget is not None:
        # Added one by one: set() scans every header, extend() runs a generator per pair.
        response.headers.add("RateLimit-Limit", str(budget.limit))
        response.headers.add("RateLimit-Remaining", str(budget.remaining))
        response.headers.add("RateLimit-Reset", str(budget.reset_in))
    return response


def configure(app: Flask, settings: Settings) -> bool:
    """Set up the limits of RATE_LIMIT (empty: no limit), of SIGN_IN_LIMIT and
    SIGN_IN_ADDRESS_LIMIT, and of MAIL_LIMIT and MAIL_ADDRESS_LIMIT; whether RATE_LIMIT is on."""
    if settings.SIGN_IN_LIMIT:
        app.extensions[_SIGN_IN_ACCOUNT] = RateLimits(settings, settings.SIGN_IN_LIMIT)
    if settings.SIGN_IN_ADDRESS_LIMIT:
        app.extensions[_SIGN_IN_ADDRESS] = RateLimits(settings, settings.SIGN_IN_ADDRESS_LIMIT)
    if settings.MAIL_LIMIT:
        app.extensions[_MAIL_TARGET] = RateLimits(settings, settings.MAIL_LIMIT)
    if settings.MAIL_ADDRESS_LIMIT:
        app.extensions[_MAIL_ADDRESS] = RateLimits(settings, settings.MAIL_ADDRESS_LIMIT)
    if not settings.RATE_LIMIT:
        return False
    app.extensions[_EXTENSION] = RateLimits(settings)
    return True
