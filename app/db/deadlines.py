"""A client-side deadline on PostgreSQL and MariaDB connections, for servers that stop
answering.

PostgreSQL's own timeouts (statement, lock, idle in transaction) end work the server is
doing; a server that is frozen or cut off without a reset does nothing, and the kernel
still acknowledges what it is sent, so neither those timeouts nor TCP keepalives fire:
every request on a pooled connection hung 50 s in such a test, until the server woke.
So each checked-out connection gets a deadline; past it, a watchdog thread shuts its socket
down, the blocked driver call fails at once as a lost connection (a 503), and the pool
discards the connection. psycopg has no per-call timeout of its own to do this with;
PyMySQL's read_timeout bounds each read, not the call, so it gets the same watchdog.
"""

import logging
import os
import socket
import threading
import time
from itertools import count
from typing import Any

from sqlalchemy import Connection, Engine, event

log = logging.getLogger(__name__)

# A watchdog that ticks this often ends a call at most this late.
_TICK = 0.2
_INFO_KEY = "deadline_token"


class Watchdog:
    """One daemon thread per process that shuts down sockets whose deadline passed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, int]] = {}  # token: (deadline, socket fd)
        self._tokens = count(1)
        self._pid = 0
        self.fired = 0  # read by tests

    def arm(self, fd: int, seconds: float) -> int:
        """Watch the socket for this long; return the token that disarms it."""
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (after a fork)
                self._pid = os.getpid()
                self._armed.clear()
                threading.Thread(target=self._run, name="db-deadline", daemon=True).start()
            token = next(self._tokens)
            self._armed[token] = (time.monotonic() + seconds, fd)
            return token

    def rearm(self, token: int, seconds: float) -> None:
        """Move a watched socket's deadline to this many seconds from now."""
        with self._lock:
            if token in self._armed:
                self._armed[token] = (time.monotonic() + seconds, self._armed[token][1])

    def disarm(self, token: int) -> None:
        """Stop watching; after this returns the watchdog never touches that socket."""
        with self._lock:
            self._armed.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(_TICK)
            now = time.monotonic()
            # Under the lock: a socket is shut down only while its connection is still
            # checked out, so its descriptor cannot have been reused meanwhile.
            with self._lock:
                expired = [t for t, (deadline, _) in self._armed.items() if deadline <= now]
                for token in expired:
                    _, fd = self._armed.pop(token)
                    _shut_down(fd)
                    self.fired += 1


def _shut_down(fd: int) -> None:
    # shutdown() acts on the socket, not the descriptor: the driver's blocked wait returns
    # and its next read sees the end; the duplicate is closed, the driver's own fd is not.
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return
    log.error("a database call passed its deadline; its connection was cut")


watchdog = Watchdog()


def extend(connection: Connection, seconds: float) -> None:
    """Give a checked-out connection a new deadline from now (bulk work: an export)."""
    token = connection.connection.info.get(_INFO_KEY)
    if token is not None:
        watchdog.rearm(token, seconds)


def _fileno(dbapi_connection: Any) -> int:
    # psycopg's connection says its socket; PyMySQL's keeps it, with no accessor of its own.
    if hasattr(dbapi_connection, "fileno"):
        return int(dbapi_connection.fileno())
    return int(dbapi_connection._sock.fileno())


def watch(engine: Engine, seconds: float) -> None:
    """Give every connection the engine hands out a deadline of this many seconds."""

    @event.listens_for(engine, "checkout")
    def _arm(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        record.info[_INFO_KEY] = watchdog.arm(_fileno(dbapi_connection), seconds)

    def _disarm(record: Any) -> None:
        token = record.info.pop(_INFO_KEY, None)
        if token is not None:
            watchdog.disarm(token)

    # Invalidation closes the connection (and may clear its info) before any checkin.
    event.listen(engine, "invalidate", lambda _c, record, _e: _disarm(record))
    event.listen(engine, "soft_invalidate", lambda _c, record, _e: _disarm(record))
    event.listen(engine, "checkin", lambda _c, record: _disarm(record))
