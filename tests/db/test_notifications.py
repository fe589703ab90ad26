"""LISTEN/NOTIFY on PostgreSQL: a revoked key stops working in every server process at
once, not when each process's 10 s cache of verified keys expires; a listener whose
connection is killed reconnects and says so."""

import logging
import threading
import time

import httpx
import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import SETTINGS, Settings
from app.db import notifications
from app.db.session import db
from app.services.api_keys import KEY_CACHE_SECONDS, revoke_api_key
from tests.factories import make_api_key
from tests.helpers import serving

pytestmark = pytest.mark.postgresql_only("LISTEN/NOTIFY is PostgreSQL's")

# How soon a revocation must be seen everywhere: well inside the cache's lifetime.
WITHIN_SECONDS = 1.0


def test_a_listener_hears_notifies_and_comes_back_after_its_connection_dies(
    app: Flask, backend: str
) -> None:
    settings: Settings = app.extensions[SETTINGS]
    channel = f"test_channel_{time.monotonic_ns()}"
    heard: list[str] = []
    got, connected = threading.Event(), threading.Event()
    gaps = [0]

    def on_message(payload: str) -> None:
        heard.append(payload)
        got.set()

    def on_gap() -> None:
        gaps[0] += 1
        connected.set()

    notifications.listen(settings, channel, on_message, on_gap)
    assert connected.wait(10), "the listener never connected"
    with app.app_context():
        db.session.execute(text("SELECT pg_notify(:c, 'one')"), {"c": channel})
        db.session.commit()
        assert got.wait(5)
        connected.clear()
        got.clear()
        # Kill the listener's backend: it reconnects (a gap: its caller may have missed some).
        db.session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND query LIKE :channel"
            ),
            {"channel": f"%{channel}%"},
        )
        db.session.commit()
        assert connected.wait(10), "the listener did not reconnect"
        db.session.execute(text("SELECT pg_notify(:c, 'two')"), {"c": channel})
        db.session.commit()
        assert got.wait(5)

    assert heard == ["one", "two"]
    assert gaps[0] == 2


@pytest.mark.live
def test_a_revoked_key_stops_working_in_every_server_process_at_once(
    app: Flask, backend: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = make_api_key(app)
    prefix = token.split("_")[1]
    headers = {"Authorization": f"Bearer {token}"}
    with serving(database_url, tmp_path_factory, WEB_CONCURRENCY="2") as server:
        # A new connection each: both workers verify the key, and cache it for 10 s.
        warm = [httpx.get(f"{server.url}/users", headers=headers, timeout=10) for _ in range(30)]
        assert {r.status_code for r in warm} == {200}
        time.sleep(0.5)  # the listeners are up (they connect as the workers start)

        with app.app_context():
            revoke_api_key(prefix)
            db.session.commit()
        revoked_at = time.monotonic()
        statuses: list[tuple[float, int]] = []
        # At least 10 requests, so both workers answer some, however busy the machine (7 fit
        # in the second once, under load 10); all well inside the cache's 10 s.
        while (elapsed := time.monotonic() - revoked_at) < WITHIN_SECONDS or (
            len(statuses) < 10 and elapsed < KEY_CACHE_SECONDS / 2
        ):
            response = httpx.get(f"{server.url}/users", headers=headers, timeout=10)
            statuses.append((time.monotonic() - revoked_at, response.status_code))
        log = server.log()

    still_working = [(round(t, 3), s) for t, s in statuses if s != 401]
    # Without the NOTIFY, a worker's cache kept the key for up to KEY_CACHE_SECONDS.
    assert KEY_CACHE_SECONDS > 5 * WITHIN_SECONDS
    assert len(statuses) >= 10
    assert still_working == [], f"served after revocation: {still_working}\n{log}"


def test_a_listener_that_cannot_connect_says_so_once_in_one_line(
    app: Flask, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Retried every second, each try once logged a traceback: 15 lines a second, after the
    # suite's summary, from a test's listener whose database had been dropped.
    settings: Settings = app.extensions[SETTINGS]
    gone = make_url(settings.database_url).set(database=f"no_such_db_{time.monotonic_ns()}")
    elsewhere = settings.model_copy(
        update={"DB_LISTEN_URL": gone.render_as_string(hide_password=False)}
    )
    with caplog.at_level(logging.INFO, logger=notifications.__name__):
        notifications.listen(elsewhere, "test_nowhere", lambda _payload: None, lambda: None)
        time.sleep(3.5 * notifications.RETRY_SECONDS)

    records = [r for r in caplog.records if r.name == notifications.__name__]
    assert len(records) == 1
    assert records[0].exc_info is None
    assert records[0].getMessage().startswith("cannot LISTEN on test_nowhere (")
    assert "does not exist" in records[0].getMessage()
