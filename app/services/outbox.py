"""The outbox's one way to claim work and settle it, shared by webhook deliveries and mail.

``claim`` leases due rows to this worker in one short transaction: on PostgreSQL and MariaDB
``FOR UPDATE SKIP LOCKED``, so workers on several machines claim disjoint rows without
waiting on each other; on SQLite one worker runs and the clause is left out. The send happens
outside any transaction. ``settle`` then records the outcome; if the worker dies first, the
lease runs out and the row is claimed again (at least once, never lost).
"""

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Table, Update, or_, select, update

from app.models.outbox import ERROR_MAX, FAILED, PENDING, SENT


def now() -> datetime:
    """The moment every outbox comparison uses (the worker's clock, in UTC)."""
    return datetime.now(UTC)


def table_of(model: type[Any]) -> Table:
    """The Core table of an outbox model."""
    return cast(Table, model.__table__)


def due(table: Table, moment: datetime) -> ColumnElement[bool]:
    """Rows waiting for an attempt whose time has come and whose lease, if any, ran out."""
    return (
        (table.c.state == PENDING)
        & (table.c.next_attempt_at <= moment)
        & or_(table.c.leased_until.is_(None), table.c.leased_until < moment)
    )


def claim(
    conn: Connection,
    table: Table,
    *,
    limit: int,
    lease: timedelta,
    where: Sequence[ColumnElement[bool]] = (),
) -> list[int]:
    """Lease up to ``limit`` due rows (longest due first, also meeting ``where``); their ids.

    Commits on ``conn`` (which must not be in a transaction): the lease is visible to other
    workers at once. PostgreSQL and SQLite lease in one ``UPDATE ... RETURNING`` (on SQLite
    a plain SELECT would not take the write lock, so two claims could read the same rows);
    MariaDB, which has no UPDATE ... RETURNING (nor LIMIT in an IN subquery), locks with the
    SELECT, then updates.
    """
    moment = now()
    chosen = (
        select(table.c.id)
        .where(due(table, moment), *where)
        # Oldest due first, in the order of the due index (state, next_attempt_at) every
        # outbox table has: by id, PostgreSQL walked the primary key through every row sent
        # before the first pending one (15 ms a claim after 100,000 sent, against 0.26 ms).
        .order_by(table.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    lease_it = update(table).values(leased_until=moment + lease, attempts=table.c.attempts + 1)
    with conn.begin():
        if conn.dialect.name != "mysql":
            ids = conn.scalars(
                lease_it.where(table.c.id.in_(chosen.scalar_subquery())).returning(table.c.id)
            )
            return sorted(ids)
        found = list(conn.scalars(chosen))
        if found:
            conn.execute(lease_it.where(table.c.id.in_(found)))
    return found


def backoff(attempt: int, *, base: float, cap: float) -> timedelta:
    """The wait before attempt ``attempt + 1``: exponential, capped, with "equal jitter" (AWS's
    "Exponential Backoff and Jitter": half fixed, half random), so retries spread out and a
    receiver coming back is not hit by all of them at once, yet each still waits."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - not a secret


def settled(
    table: Table,
    row_id: int,
    *,
    error: str | None = None,
    retry_in: timedelta | None = None,
) -> Update:
    """The UPDATE that records an attempt's outcome: sent (no ``error``); or pending again
    after ``retry_in``; or, with no retry, failed for good. The lease ends either way. For a
    caller that writes more in the same transaction (the attempt's own row, say)."""
    moment = now()
    values: dict[str, Any] = {
        "leased_until": None,
        "last_error": None if error is None else error[:ERROR_MAX],
    }
    if error is None:
        values |= {"state": SENT, "finished_at": moment}
    elif retry_in is not None:
        values |= {"state": PENDING, "next_attempt_at": moment + retry_in}
    else:
        values |= {"state": FAILED, "finished_at": moment}
    return update(table).where(table.c.id == row_id).values(values)


def settle(
    conn: Connection,
    table: Table,
    row_id: int,
    *,
    error: str | None = None,
    retry_in: timedelta | None = None,
) -> None:
    """Record an attempt's outcome (``settled``) on its own. Commits on ``conn``."""
    with conn.begin():
        conn.execute(settled(table, row_id, error=error, retry_in=retry_in))
