"""The audit log: change events (app/services/events.py) sealed into a hash chain, read,
verified and pruned.

**Why a sealer, not a chain written by each writer.** A writer that chains its own event
must read the chain's head and write the next link while no other writer does: on
PostgreSQL and MariaDB a lock on one head row held from that read to its commit, which
turns every write in the system into one queue (on SQLite writers queue anyway, but a
second statement per write stays). Without that lock two writers read the same head and
the chain forks. So writers only insert (one statement, no shared row), and ``seal`` links
what has committed since the last seal, in id order, under the head row's lock taken by
one sealer at a time: the chain's order is the order of sealing (``seq``), never forked,
and an event that commits late (a lower id after a higher one was sealed) is simply
linked by the next seal. The price: an event is tamper-evident from its seal on, not from
its commit; ``audit seal`` (cron, and the worker when it lands) keeps that window short.
"""

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import IntegrityError

from app.config import current_settings
from app.db.deadlines import bulk_deadlines
from app.db.session import db
from app.models import AuditChain, AuditEvent
from app.models.audit_event import GENESIS
from app.schemas.audit import AuditEventQuery, AuditFilters
from app.services import webhook_delivery
from app.services.events import EVENT_COLUMNS, EventRow, Fields, event_item
from app.services.pagination import SortKey, next_cursor, paginate

_events = cast(Table, AuditEvent.__table__)
_chain = cast(Table, AuditChain.__table__)
_CHAIN_ID = 1


def link(previous: str, row: EventRow | Fields, seq: int) -> str:
    """The hash of an event at ``seq`` after ``previous``: SHA-256 over both, canonical JSON."""
    get = row.__getitem__ if isinstance(row, Mapping) else row._mapping.__getitem__
    occurred_at = _aware(get("occurred_at"))
    content = [
        seq,
        get("id"),
        occurred_at.astimezone(UTC).isoformat(),
        get("type"),
        get("actor_kind"),
        get("actor_id"),
        get("actor_label"),
        get("resource_type"),
        get("resource_id"),
        get("changes"),
        get("request_id"),
    ]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()


def _lock_chain(conn: Connection) -> Row[Any]:
    # An UPDATE takes the head row's lock on every backend (SQLite: the database's write
    # lock), which a SELECT ... FOR UPDATE would not on SQLite: one sealer or pruner at a time.
    touch = update(_chain).where(_chain.c.id == _CHAIN_ID).values(head_seq=_chain.c.head_seq)
    if not conn.execute(touch).rowcount:
        # Gone (a test empties every table) or never made: start at genesis.
        genesis = {
            "id": _CHAIN_ID,
            "head_seq": 0,
            "head_hash": GENESIS,
            "anchor_seq": 0,
            "anchor_hash": GENESIS,
        }
        if conn.dialect.name == "mysql":
            # Two sealers' plain INSERTs both take a shared lock on the winner's row (the
            # duplicate check), then both want it exclusive: a deadlock, seen with three
            # sealers at once. ON DUPLICATE KEY UPDATE takes it exclusive from the start.
            upsert = mysql_insert(_chain).values(genesis)
            conn.execute(upsert.on_duplicate_key_update(head_seq=_chain.c.head_seq))
        else:
            try:
                with conn.begin_nested():
                    conn.execute(insert(_chain).values(genesis))
            except IntegrityError:
                conn.execute(touch)  # another sealer made it meanwhile: wait for its lock
    return conn.execute(select(_chain).where(_chain.c.id == _CHAIN_ID)).one()


_SEAL_ONE = (
    update(_events)
    .where(_events.c.id == bindparam("event_id"), _events.c.seq.is_(None))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def seal(batch: int = 1_000) -> int:
    """Link every committed, unsealed event into the chain, in id order, and add their
    webhook deliveries (app/services/webhook_delivery.py); return how many were sealed."""
    sealed = 0
    while True:
        with db.engine.begin() as conn:
            head = _lock_chain(conn)
            rows = conn.execute(
                select(*EVENT_COLUMNS)
                .where(_events.c.seq.is_(None))
                .order_by(_events.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return sealed
            seq, previous = head.head_seq, head.head_hash
            links = []
            for row in rows:
                seq += 1
                previous = link(previous, row, seq)
                links.append({"event_id": row.id, "new_seq": seq, "new_hash": previous})
            conn.execute(_SEAL_ONE, links)
            # In the seal's transaction: an event is sealed once, so it fans out once.
            webhook_delivery.fan_out(conn, rows)
            conn.execute(
                update(_chain)
                .where(_chain.c.id == _CHAIN_ID)
                .values(head_seq=seq, head_hash=previous)
            )
        sealed += len(rows)
        if len(rows) < batch:
            return sealed


@dataclass
class Verdict:
    """What ``verify`` found: how many events it checked, and the first problem if any."""

    checked: int
    unsealed: int
    anchor_seq: int
    problem: str | None = None
    event_id: int | None = None


def _sealed_rows(conn: Connection, after_seq: int) -> Iterator[EventRow]:
    stmt = select(*EVENT_COLUMNS).where(_events.c.seq > after_seq).order_by(_events.c.seq)
    result = conn.execution_options(yield_per=2_000).execute(stmt)
    with result:
        yield from result


def verify() -> Verdict:
    """Walk the chain from its anchor; name the first event altered or missing."""
    with db.engine.connect() as conn:
        head = conn.execute(select(_chain).where(_chain.c.id == _CHAIN_ID)).one_or_none()
        anchor_seq = head.anchor_seq if head else 0
        previous = head.anchor_hash if head else GENESIS
        unsealed = conn.execute(
            select(func.count()).select_from(_events).where(_events.c.seq.is_(None))
        ).scalar_one()
        verdict = Verdict(checked=0, unsealed=int(unsealed), anchor_seq=anchor_seq)
        expected = anchor_seq + 1
        for row in _sealed_rows(conn, anchor_seq):
            if row.seq != expected:
                verdict.problem = (
                    f"event #{expected} of the chain is missing (the next present is event "
                    f"{row.id}, #{row.seq})"
                )
                verdict.event_id = row.id
                return verdict
            if link(previous, row, row.seq) != row.hash:
                verdict.problem = f"event {row.id} (#{row.seq}) was altered"
                verdict.event_id = row.id
                return verdict
            previous = row.hash
            verdict.checked += 1
            expected += 1
        head_seq = head.head_seq if head else 0
        if expected - 1 < head_seq or (head is not None and previous != head.head_hash):
            verdict.problem = (
                f"events #{expected} to #{head_seq} of the chain are missing (its head says "
                f"{head_seq} were sealed)"
            )
        return verdict


def prune(older_than: timedelta) -> tuple[int, int]:
    """Delete sealed events older than ``older_than`` from the chain's start; record the
    last one's hash as the anchor the rest verifies from. Return (deleted, anchor seq)."""
    seal()
    cutoff = datetime.now(UTC) - older_than
    with db.engine.begin() as conn:
        head = _lock_chain(conn)
        # The prefix of the chain that is old: up to the first event (in seq) that is not.
        first_kept = conn.execute(
            select(func.min(_events.c.seq)).where(
                _events.c.seq > head.anchor_seq, _events.c.occurred_at >= cutoff
            )
        ).scalar_one()
        last = head.head_seq if first_kept is None else int(first_kept) - 1
        if last <= head.anchor_seq:
            return 0, int(head.anchor_seq)
        anchor_hash = conn.execute(select(_events.c.hash).where(_events.c.seq == last)).scalar_one()
        gone = conn.execute(delete(_events).where(_events.c.seq <= last)).rowcount
        conn.execute(
            update(_chain)
            .where(_chain.c.id == _CHAIN_ID)
            .values(anchor_seq=last, anchor_hash=anchor_hash, anchored_at=datetime.now(UTC))
        )
    return int(gone), last


# Reading the log.

EVENT_SORTS: dict[str, SortKey] = {
    "id": SortKey((AuditEvent.id,), descending=False),
    "-id": SortKey((AuditEvent.id,), descending=True),
}


def _filtered(filters: AuditFilters) -> Select[Any]:
    stmt = select(*EVENT_COLUMNS)
    for name in ("type", "resource_type", "resource_id", "actor_kind", "actor_id"):
        value = getattr(filters, name)
        if value is not None:
            stmt = stmt.where(_events.c[name] == value)
    if filters.since is not None:
        stmt = stmt.where(_events.c.occurred_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(_events.c.occurred_at < filters.until)
    return stmt


def list_events(query: AuditEventQuery) -> tuple[list[EventRow], str | None]:
    """Return one page of events and the cursor of the next."""
    key = EVENT_SORTS[query.sort]
    stmt = paginate(_filtered(query), key, query.sort, query.cursor, query.limit)
    rows = list(db.session.execute(stmt))
    return rows[: query.limit], next_cursor(rows, key, query.sort, query.limit)


def export_events(filters: AuditFilters) -> Iterator[bytes]:
    """Yield every event the filters keep as NDJSON lines, in id order, in constant memory."""
    connection = db.session.connection()
    # Between fetches the transaction idles while a client reads: bulk deadlines.
    bulk_deadlines(connection, current_settings())
    stmt = _filtered(filters).order_by(_events.c.id)
    result = db.session.execute(stmt, execution_options={"yield_per": 2_000})
    with result:
        for partition in result.partitions():
            yield "".join(_ndjson(row) for row in partition).encode()


def _ndjson(row: EventRow) -> str:
    item = event_item(row)
    item["occurred_at"] = _aware(row.occurred_at).isoformat()
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"


def _aware(moment: datetime) -> datetime:
    # SQLite keeps no offset; every value is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
