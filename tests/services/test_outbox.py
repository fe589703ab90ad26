"""The outbox's claim and settle: workers lease disjoint rows, a lapsed lease is claimed
again, outcomes move the state; on every backend (SKIP LOCKED where there is one)."""

import threading
from datetime import timedelta

from flask import Flask
from sqlalchemy import Connection, Insert, insert, select, update

from app.db.session import db
from app.models import AuditEvent, WebhookDelivery, WebhookEndpoint
from app.models.outbox import FAILED, PENDING, SENT
from app.services import outbox

_deliveries = outbox.table_of(WebhookDelivery)


def _new_id(conn: Connection, stmt: Insert) -> int:
    key = conn.execute(stmt).inserted_primary_key
    assert key is not None
    return int(key[0])


def _pending(app: Flask, count: int) -> list[int]:
    """``count`` pending deliveries of as many events to one endpoint; their ids."""
    with app.app_context(), db.engine.begin() as conn:
        endpoint = _new_id(
            conn,
            insert(WebhookEndpoint).values(url="http://127.0.0.1:9/", events=["*"], secret="s"),
        )
        ids = []
        for n in range(count):
            event = _new_id(
                conn,
                insert(AuditEvent).values(
                    type="user.created",
                    actor_kind="cli",
                    resource_type="user",
                    resource_id=str(n),
                    changes={},
                ),
            )
            ids.append(
                _new_id(
                    conn,
                    insert(WebhookDelivery).values(
                        endpoint_id=endpoint, event_id=event, resource_key=f"user:{n}"
                    ),
                )
            )
        return ids


def _claim(app: Flask, limit: int, lease: timedelta = timedelta(minutes=1)) -> list[int]:
    with app.app_context(), db.engine.connect() as conn:
        return outbox.claim(conn, _deliveries, limit=limit, lease=lease)


def test_workers_at_once_claim_disjoint_rows_and_together_all(app: Flask) -> None:
    ids = _pending(app, 40)
    claimed: list[int] = []

    def work() -> None:
        # A claim may find every due row locked by another's (SKIP LOCKED), so a worker
        # claims round after round, as the worker does.
        for _ in range(8):
            claimed.extend(_claim(app, 5))

    # SQLite runs one worker: its writers queue on the database lock, so they are disjoint too.
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == ids  # each once: none twice, none left
    assert _claim(app, 10) == []  # leased, so nothing is due


def test_a_lapsed_lease_is_claimed_again_and_counts_an_attempt(app: Flask) -> None:
    (row,) = _pending(app, 1)
    assert _claim(app, 5, lease=timedelta(seconds=-1)) == [row]  # the worker died at once
    assert _claim(app, 5) == [row]
    with app.app_context():
        attempts = db.session.execute(
            select(WebhookDelivery.attempts).where(WebhookDelivery.id == row)
        ).scalar_one()
    assert attempts == 2


def test_settle_sends_retries_later_or_gives_up(app: Flask) -> None:
    sent, retried, failed = _pending(app, 3)
    assert _claim(app, 3) == [sent, retried, failed]
    with app.app_context(), db.engine.connect() as conn:
        outbox.settle(conn, _deliveries, sent)
        outbox.settle(conn, _deliveries, retried, error="x" * 900, retry_in=timedelta(hours=1))
        outbox.settle(conn, _deliveries, failed, error="410 Gone")
        rows = {
            row.id: row
            for row in conn.execute(
                select(
                    _deliveries.c.id,
                    _deliveries.c.state,
                    _deliveries.c.last_error,
                    _deliveries.c.leased_until,
                    _deliveries.c.finished_at,
                )
            )
        }
    assert (rows[sent].state, rows[sent].last_error) == (SENT, None)
    assert rows[sent].finished_at is not None
    assert (rows[retried].state, len(rows[retried].last_error)) == (PENDING, 500)
    assert (rows[failed].state, rows[failed].last_error) == (FAILED, "410 Gone")
    assert all(row.leased_until is None for row in rows.values())
    assert _claim(app, 3) == []  # the retry is an hour away
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(
            update(_deliveries)
            .where(_deliveries.c.id == retried)
            .values(next_attempt_at=outbox.now() - timedelta(seconds=1))
        )
    assert _claim(app, 3) == [retried]


def test_backoff_grows_to_its_cap_and_jitters() -> None:
    waits = [outbox.backoff(n, base=10, cap=3600).total_seconds() for n in range(1, 16)]
    assert 5 <= waits[0] <= 10
    assert 640 <= waits[7] <= 1280
    assert all(1800 <= wait <= 3600 for wait in waits[10:])
    assert len({outbox.backoff(3, base=10, cap=3600) for _ in range(20)}) > 1
