"""Webhook deliveries in the database: fanned out when events are sealed, claimed in order
per resource, and settled with their attempt, all on an explicit engine or connection.

The worker's sender (app/worker/webhooks.py) calls these from threads beside its event
loop, each call on a connection of its own: no Session is shared between threads, and no
transaction stays open while a request is in flight (the outbox's lease stands for it).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    exists,
    func,
    insert,
    select,
    update,
)

from app.models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.outbox import PENDING
from app.models.webhook import DESCRIPTION_MAX, EXCERPT_MAX
from app.services import events, outbox
from app.services.events import EVENT_COLUMNS, EventRow, event_item

_deliveries = outbox.table_of(WebhookDelivery)
_endpoints = outbox.table_of(WebhookEndpoint)
_attempts = outbox.table_of(WebhookAttempt)
_events = outbox.table_of(AuditEvent)

RESOURCE_KEY_MAX = 100
EVERY_TYPE = "*"
# Who disables an endpoint: the worker, on the receiver's word (410) or its silence.
SYSTEM = ("system", None, "webhook worker")


def resource_key(row: EventRow) -> str:
    """What deliveries to one endpoint are ordered by: the event's resource."""
    return f"{row.resource_type}:{row.resource_id or ''}"[:RESOURCE_KEY_MAX]


def fan_out(conn: Connection, rows: Sequence[EventRow]) -> int:
    """Add a delivery of each event to each enabled endpoint that wants its type, in the
    caller's transaction (the seal's: an event is sealed once, so fanned out once); return
    how many. The few enabled endpoints are read once per batch and matched here: JSON
    containment is spelled differently by each backend, and the list is short."""
    endpoints = conn.execute(
        select(_endpoints.c.id, _endpoints.c.events).where(_endpoints.c.enabled)
    ).all()
    if not endpoints or not rows:
        return 0
    wanted = [(e.id, set(e.events or ())) for e in endpoints]
    new = [
        {"endpoint_id": endpoint_id, "event_id": row.id, "resource_key": resource_key(row)}
        for row in rows
        for endpoint_id, types in wanted
        if row.type in types or EVERY_TYPE in types
    ]
    if new:
        conn.execute(insert(_deliveries), new)
    return len(new)


def _first_of_its_resource() -> Any:
    # No delivery of the same resource to the same endpoint is waiting before this one
    # (pending: due, leased or backing off), so each resource's events go one at a time,
    # in order, even under retries and with several workers.
    earlier = _deliveries.alias("earlier")
    return ~exists(
        select(earlier.c.id).where(
            earlier.c.endpoint_id == _deliveries.c.endpoint_id,
            earlier.c.resource_key == _deliveries.c.resource_key,
            earlier.c.state == PENDING,
            earlier.c.id < _deliveries.c.id,
        )
    )


def _endpoint_enabled() -> Any:
    return exists(
        select(_endpoints.c.id).where(
            _endpoints.c.id == _deliveries.c.endpoint_id, _endpoints.c.enabled
        )
    )


@dataclass(frozen=True)
class Claimed:
    """A leased delivery with what its attempt needs."""

    id: int
    attempts: int
    endpoint_id: int
    failures_in_row: int
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    event: EventRow


def claim(engine: Engine, *, limit: int, lease: timedelta) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries (each the first waiting of its resource, to an
    enabled endpoint) and read what sending them takes."""
    with engine.connect() as conn:
        ids = outbox.claim(
            conn,
            _deliveries,
            limit=limit,
            lease=lease,
            where=[_first_of_its_resource(), _endpoint_enabled()],
        )
        if not ids:
            return []
        found = conn.execute(
            select(
                _deliveries.c.id,
                _deliveries.c.attempts,
                _deliveries.c.event_id,
                _endpoints.c.id.label("endpoint_id"),
                _endpoints.c.failures_in_row,
                _endpoints.c.url,
                _endpoints.c.secret,
                _endpoints.c.previous_secret,
                _endpoints.c.previous_secret_until,
            )
            .join(_endpoints, _endpoints.c.id == _deliveries.c.endpoint_id)
            .where(_deliveries.c.id.in_(ids))
            .order_by(_deliveries.c.id)
        ).all()
        wanted = {row.event_id for row in found}
        by_id = {
            e.id: e for e in conn.execute(select(*EVENT_COLUMNS).where(_events.c.id.in_(wanted)))
        }
        conn.rollback()
    return [
        Claimed(
            id=row.id,
            attempts=row.attempts,
            endpoint_id=row.endpoint_id,
            failures_in_row=row.failures_in_row,
            url=row.url,
            secret=row.secret,
            previous_secret=row.previous_secret,
            previous_secret_until=None
            if row.previous_secret_until is None
            else _utc(row.previous_secret_until),
            event=by_id[row.event_id],
        )
        for row in found
    ]


def rfc3339(moment: datetime) -> str:
    """A moment in UTC as RFC 3339 with a ``Z`` (the form Standard Webhooks' examples use)."""
    return _utc(moment).isoformat().replace("+00:00", "Z")


def payload(row: EventRow) -> dict[str, Any]:
    """The body of every delivery of an event: ``{"type", "timestamp", "data"}``, ``data``
    being the event as the audit API shows it."""
    data = event_item(row)
    data["occurred_at"] = rfc3339(row.occurred_at)
    return {"type": row.type, "timestamp": data["occurred_at"], "data": data}


def body(row: EventRow) -> bytes:
    """``payload`` as the bytes sent and signed."""
    return json.dumps(payload(row), ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    """One attempt, as recorded."""

    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None

    @property
    def sent(self) -> bool:
        """The receiver took it (any 2xx)."""
        return (
            self.status_code is not None
            and HTTPStatus.OK <= self.status_code < HTTPStatus.MULTIPLE_CHOICES
        )

    @property
    def gone(self) -> bool:
        """The receiver said the endpoint is gone for good (410): stop sending to it."""
        return self.status_code == HTTPStatus.GONE

    def describe(self) -> str:
        """Why the attempt failed, for the delivery's last_error."""
        if self.error is not None:
            return self.error
        return f"the receiver answered {self.status_code}"


# What settle decided, for the worker's metrics.
SENT, RETRIED, FAILED, DISABLED, SKIPPED = "sent", "retried", "failed", "disabled", "skipped"


@dataclass(frozen=True)
class Policy:
    """How long a delivery is retried, and when an endpoint is given up on (the settings)."""

    max_attempts: int
    retry_base: float
    retry_cap: float
    disable_after: int


def settle(engine: Engine, delivery: Claimed, outcome: Outcome, policy: Policy) -> str:
    """Record the attempt and its consequences in one transaction: the delivery sent,
    retried after the backoff or failed for good after ``max_attempts``; the endpoint's
    failures in a row; and, on a 410 or ``disable_after`` deliveries failed for good in a
    row, the endpoint disabled and a ``webhook.disabled`` event. Return which of SENT,
    RETRIED, FAILED, DISABLED, or SKIPPED when the delivery is gone (its endpoint deleted)
    or was settled meanwhile (by another worker, after this one's lease ran out)."""
    retrying = not (outcome.sent or outcome.gone) and delivery.attempts < policy.max_attempts
    error = None if outcome.sent else outcome.describe()
    wait = None
    if retrying:
        wait = outbox.backoff(delivery.attempts, base=policy.retry_base, cap=policy.retry_cap)
    endpoint = _endpoints.c
    with engine.begin() as conn:
        still_pending = _deliveries.c.state == PENDING
        settling = outbox.settled(_deliveries, delivery.id, error=error, retry_in=wait)
        if not conn.execute(settling.where(still_pending)).rowcount:
            return SKIPPED
        conn.execute(
            insert(_attempts).values(
                delivery_id=delivery.id,
                started_at=outcome.started_at,
                duration_ms=outcome.duration_ms,
                status_code=outcome.status_code,
                error=None if outcome.error is None else outcome.error[:DESCRIPTION_MAX],
                response_excerpt=None if outcome.excerpt is None else outcome.excerpt[:EXCERPT_MAX],
            )
        )
        if outcome.sent:
            if delivery.failures_in_row:  # as claimed: a statement only when there is one
                conn.execute(
                    update(_endpoints)
                    .where(endpoint.id == delivery.endpoint_id)
                    .values(failures_in_row=0)
                )
            return SENT
        if outcome.gone:
            disabled = _disable(conn, delivery.endpoint_id, "the receiver answered 410 Gone")
            return DISABLED if disabled else FAILED
        if retrying:
            return RETRIED
        conn.execute(
            update(_endpoints)
            .where(endpoint.id == delivery.endpoint_id)
            .values(failures_in_row=endpoint.failures_in_row + 1)
        )
        failures = conn.execute(
            select(endpoint.failures_in_row).where(endpoint.id == delivery.endpoint_id)
        ).scalar_one_or_none()
        if failures is not None and failures >= policy.disable_after:
            reason = f"{failures} deliveries in a row failed after every attempt"
            if _disable(conn, delivery.endpoint_id, reason):
                return DISABLED
        return FAILED


def _disable(conn: Connection, endpoint_id: int, reason: str) -> bool:
    endpoint = _endpoints.c
    changed = conn.execute(
        update(_endpoints)
        .where(endpoint.id == endpoint_id, endpoint.enabled)
        .values(enabled=False, disabled_reason=reason, version=endpoint.version + 1)
    ).rowcount
    if changed:  # once, whoever got there first
        changes: events.Changes = {"enabled": [True, False], "disabled_reason": [None, reason]}
        conn.execute(
            events.INSERT_EVENT,
            events.values("webhook.disabled", "webhook", endpoint_id, changes, SYSTEM),
        )
    return bool(changed)


def queue(engine: Engine) -> tuple[int, float]:
    """Deliveries waiting (pending), and the age in seconds of the oldest (0: none)."""
    with engine.connect() as conn:
        waiting, oldest = conn.execute(
            select(func.count(), func.min(_deliveries.c.created_at)).where(
                _deliveries.c.state == PENDING
            )
        ).one()
    if oldest is None:
        return int(waiting), 0.0
    age = datetime.now(UTC) - _utc(oldest)
    return int(waiting), max(0.0, age.total_seconds())


def _utc(moment: datetime) -> datetime:
    # SQLite and MariaDB keep no offset; every value is UTC.
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
