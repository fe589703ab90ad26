"""PostgreSQL LISTEN on the asyncpg background loop: a NOTIFY reaches every process of
every replica at once (PostgreSQL delivers it when the sending transaction commits).

LISTEN needs a session that stays the listener's, which PgBouncer in transaction mode does
not give: the listener connects to DB_LISTEN_URL, by default DATABASE_URL, directly.
"""

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from app.config import Settings, sqlalchemy_url
from app.db import asyncpg_pool

log = logging.getLogger(__name__)

# Seconds between tries to (re)connect, and between checks that a quiet connection lives:
# a server gone without closing the socket would otherwise leave a listener that hears
# nothing, for ever.
RETRY_SECONDS = 1.0
CHECK_EVERY_SECONDS = 15.0
# Its application_name, so pg_stat_activity tells it from the pooled connections.
LISTENER_NAME = "user-api listener"


def listen(
    settings: Settings, channel: str, on_message: Callable[[str], None], on_gap: Callable[[], None]
) -> None:
    """Call ``on_message(payload)`` for each NOTIFY on ``channel`` in this process from now
    on, and ``on_gap()`` at each (re)connection: what was sent while away is lost."""
    url = sqlalchemy_url(settings.DB_LISTEN_URL or settings.DATABASE_URL or "")
    timeout = settings.DB_CONNECT_TIMEOUT
    asyncpg_pool.submit(_listen(asyncpg_pool.dsn(url), channel, timeout, on_message, on_gap))


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


async def _listen(
    dsn: str,
    channel: str,
    wait_seconds: float,
    on_message: Callable[[str], None],
    on_gap: Callable[[], None],
) -> None:
    # Each outage is logged once, in one line, and its end once: retried every second, a
    # traceback a try filled the log (15 lines a second once a test's database was dropped).
    failing = False
    while True:
        try:
            connection = await asyncpg.connect(
                dsn, timeout=wait_seconds, server_settings={"application_name": LISTENER_NAME}
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            if not failing:
                log.warning(
                    "cannot LISTEN on %s (%s); trying again every %s s",
                    channel,
                    _reason(error),
                    RETRY_SECONDS,
                )
            failing = True
        else:
            if failing:
                log.info("LISTEN on %s again", channel)
            failing = False
            try:
                await _hear(connection, channel, wait_seconds, on_message, on_gap)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning(
                    "lost the LISTEN connection on %s (%s); reconnecting", channel, _reason(error)
                )
            finally:
                connection.terminate()
        await asyncio.sleep(RETRY_SECONDS)


async def _hear(
    connection: asyncpg.Connection,
    channel: str,
    wait_seconds: float,
    on_message: Callable[[str], None],
    on_gap: Callable[[], None],
) -> None:
    """Pass on what ``channel`` says until the connection is lost."""
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    await connection.add_listener(
        channel, lambda _connection, _pid, _channel, payload: on_message(str(payload))
    )
    on_gap()
    while not lost.is_set():
        try:
            await asyncio.wait_for(lost.wait(), CHECK_EVERY_SECONDS)
        except TimeoutError:
            await connection.fetchval("SELECT 1", timeout=wait_seconds)
