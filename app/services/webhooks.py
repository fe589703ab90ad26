"""Webhook endpoints and their deliveries, as the API manages them: registered, changed,
rotated, deleted; deliveries listed and retried. The worker sends them (app/worker/).

A secret is kept as it is, not hashed (HMAC signs with the key itself), and shown only in
the answer that made it. Every write records its change event, never with a secret in its
changes. Services flush, never commit.
"""

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, delete, insert, select, update

from app.config import current_settings
from app.db.session import db
from app.db.types import utcnow
from app.errors import NotFoundError, UnprocessableError
from app.models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.outbox import PENDING
from app.schemas.events import EVENT_TYPES, EVERY_TYPE
from app.schemas.webhooks import (
    DeliveryListQuery,
    WebhookCreate,
    WebhookListQuery,
    WebhookUpdate,
)
from app.services import events, webhook_urls
from app.services.outbox import now
from app.services.pagination import SortKey, next_cursor, paginate

_endpoints = cast(Table, WebhookEndpoint.__table__)
_deliveries = cast(Table, WebhookDelivery.__table__)
_attempts = cast(Table, WebhookAttempt.__table__)
_events = cast(Table, AuditEvent.__table__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the form's prefix, not a secret
# Standard Webhooks asks for 24 to 64 bytes; 32 are SHA-256's output, all the strength an
# HMAC-SHA256 key can give.
SECRET_BYTES = 32

ENDPOINT_COLUMNS = (
    _endpoints.c.id,
    _endpoints.c.url,
    _endpoints.c.description,
    _endpoints.c.events,
    _endpoints.c.enabled,
    _endpoints.c.disabled_reason,
    _endpoints.c.failures_in_row,
    _endpoints.c.previous_secret_until,
    _endpoints.c.created_at,
    _endpoints.c.updated_at,
)
EndpointRow = Row[*tuple[Any, ...]]
# What the change events record (never a secret; failures_in_row is the worker's counter).
_AUDITED = ("url", "description", "events", "enabled", "disabled_reason")
ENDPOINT_SORT = SortKey((WebhookEndpoint.id,), descending=False)

DELIVERY_COLUMNS = (
    _deliveries.c.id,
    _deliveries.c.event_id,
    _events.c.type.label("event_type"),
    _deliveries.c.state,
    _deliveries.c.attempts,
    _deliveries.c.next_attempt_at,
    _deliveries.c.last_error,
    _deliveries.c.created_at,
    _deliveries.c.finished_at,
)
DeliveryRow = Row[*tuple[Any, ...]]
DELIVERY_FIELDS = tuple(column.name for column in DELIVERY_COLUMNS)
ATTEMPT_COLUMNS = (
    _attempts.c.id,
    _attempts.c.started_at,
    _attempts.c.duration_ms,
    _attempts.c.status_code,
    _attempts.c.error,
    _attempts.c.response_excerpt,
)
ATTEMPT_FIELDS = tuple(column.name for column in ATTEMPT_COLUMNS)
DELIVERY_SORT = SortKey((WebhookDelivery.id,), descending=True)


def new_secret() -> str:
    """A fresh signing secret in Standard Webhooks' form: whsec_ and base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def ordered_events(given: Iterable[str]) -> list[str]:
    """The types once each, in EVENT_TYPES' order; ["*"] alone if it is among them."""
    chosen = set(given)
    if EVERY_TYPE in chosen:
        return [EVERY_TYPE]
    return [kind for kind in EVENT_TYPES if kind in chosen]


def webhook_item(row: EndpointRow, secret: str | None = None) -> dict[str, Any]:
    """The row as WebhookRead's fields, in order (and the secret, where it is shown once)."""
    until: datetime | None = row.previous_secret_until
    rotating = until is not None and until > now()
    item = {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "events": row.events,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "failures_in_row": row.failures_in_row,
        "rotating": rotating,
        "previous_secret_until": until if rotating else None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if secret is not None:
        item["secret"] = secret
    return item


async def check_url(url: str) -> None:
    """Refuse a URL a webhook may not have (a 422 naming why), before any unit of work opens:
    resolving a name may take a while, and no connection should wait for it."""
    try:
        await webhook_urls.resolve_async(url, current_settings().webhook_allowed_hosts)
    except webhook_urls.UnsafeUrlError as error:
        # The reason names the host and its address, never the URL's credentials.
        reason = str(error)
        problem = {"loc": ["body", "url"], "msg": reason, "type": "unsafe_url"}
        raise UnprocessableError(f"The url is refused: {reason}", errors=[problem]) from None


def _missing(webhook_id: int) -> NotFoundError:
    return NotFoundError(f"Webhook {webhook_id} does not exist.")


def _get(webhook_id: int, *, lock: bool = False) -> EndpointRow:
    # Locked: the values before a change, for its event, held until the commit (as
    # groups.update_group reads them).
    stmt = select(*ENDPOINT_COLUMNS).where(_endpoints.c.id == webhook_id)
    row = db.session.execute(stmt.with_for_update() if lock else stmt).one_or_none()
    if row is None:
        raise _missing(webhook_id)
    return row


def get_webhook(webhook_id: int) -> EndpointRow:
    """Return the endpoint or raise NotFoundError."""
    return _get(webhook_id)


def create_webhook(data: WebhookCreate) -> tuple[EndpointRow, str]:
    """Add an endpoint (its URL already checked by ``check_url``); return it and its secret."""
    secret = new_secret()
    stmt = insert(_endpoints).values(
        url=data.url,
        description=data.description,
        events=ordered_events(data.events),
        secret=secret,
    )
    row: EndpointRow = db.session.execute(stmt.returning(*ENDPOINT_COLUMNS)).one()
    events.record("webhook.created", "webhook", row.id, events.created(row._mapping, _AUDITED))
    return row, secret


def update_webhook(webhook_id: int, data: WebhookUpdate) -> EndpointRow:
    """Change the given fields (a new URL already checked); enabling clears why the service
    disabled it and its count of failures, so it starts afresh."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "events" in changes:
        changes["events"] = ordered_events(changes["events"])
    if changes.get("enabled"):
        changes |= {"disabled_reason": None, "failures_in_row": 0}
    before = _get(webhook_id, lock=True)
    db.session.execute(
        update(_endpoints)
        .where(_endpoints.c.id == webhook_id)
        .values(**changes, updated_at=utcnow(), version=_endpoints.c.version + 1)
    )
    after = _get(webhook_id)
    moved = events.diff(before._mapping, after._mapping, _AUDITED)
    events.record("webhook.updated", "webhook", webhook_id, moved)
    return after


def rotate_secret(webhook_id: int) -> tuple[EndpointRow, str]:
    """Give the endpoint a new secret; the current one keeps signing beside it for
    WEBHOOK_SECRET_OVERLAP hours (one before it is dropped). Return the endpoint and the
    new secret."""
    secret = new_secret()
    until = now() + timedelta(hours=current_settings().WEBHOOK_SECRET_OVERLAP)
    before = _get(webhook_id, lock=True)
    # In this order: MariaDB assigns a single-table UPDATE's columns left to right, each
    # seeing those before it, so the current secret must be copied before it is replaced
    # (PostgreSQL and SQLite read every right-hand side from the row as it was).
    db.session.execute(
        update(_endpoints)
        .where(_endpoints.c.id == webhook_id)
        .ordered_values(
            (_endpoints.c.previous_secret, _endpoints.c.secret),
            (_endpoints.c.secret, secret),
            (_endpoints.c.previous_secret_until, until),
            (_endpoints.c.updated_at, utcnow()),
            (_endpoints.c.version, _endpoints.c.version + 1),
        )
    )
    after = _get(webhook_id)
    # When the old secret stops signing: the one change a reader may know; no secret.
    moved = events.diff(before._mapping, after._mapping, ("previous_secret_until",))
    events.record("webhook.secret_rotated", "webhook", webhook_id, moved)
    return after, secret


def delete_webhook(webhook_id: int) -> None:
    """Delete the endpoint; its deliveries and their attempts go with it."""
    stmt = delete(_endpoints).where(_endpoints.c.id == webhook_id).returning(*ENDPOINT_COLUMNS)
    gone = db.session.execute(stmt).one_or_none()
    if gone is None:
        raise _missing(webhook_id)
    events.record("webhook.deleted", "webhook", webhook_id, events.deleted(gone._mapping, _AUDITED))


def list_webhooks(query: WebhookListQuery) -> tuple[list[EndpointRow], str | None]:
    """Return one page of endpoints by id and the cursor of the next."""
    stmt = paginate(select(*ENDPOINT_COLUMNS), ENDPOINT_SORT, "id", query.cursor, query.limit)
    rows = list(db.session.execute(stmt))
    return rows[: query.limit], next_cursor(rows, ENDPOINT_SORT, "id", query.limit)


def delivery_item(row: DeliveryRow, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The row as DeliveryRead's fields, in order, with its attempts."""
    return {**dict(zip(DELIVERY_FIELDS, row, strict=True)), "history": history}


def list_deliveries(
    webhook_id: int, query: DeliveryListQuery
) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of the endpoint's deliveries, newest first, each with its attempts
    (one query for the page's attempts), and the cursor of the next."""
    _get(webhook_id)
    stmt = (
        select(*DELIVERY_COLUMNS)
        .join(_events, _events.c.id == _deliveries.c.event_id)
        .where(_deliveries.c.endpoint_id == webhook_id)
    )
    if query.state is not None:
        stmt = stmt.where(_deliveries.c.state == query.state)
    stmt = paginate(stmt, DELIVERY_SORT, "-id", query.cursor, query.limit)
    rows = list(db.session.execute(stmt))
    page = rows[: query.limit]
    history: dict[int, list[dict[str, Any]]] = {row.id: [] for row in page}
    if page:
        found = db.session.execute(
            select(_attempts.c.delivery_id, *ATTEMPT_COLUMNS)
            .where(_attempts.c.delivery_id.in_(history))
            .order_by(_attempts.c.delivery_id, _attempts.c.id)
        )
        for delivery_id, *attempt in found:
            history[delivery_id].append(dict(zip(ATTEMPT_FIELDS, attempt, strict=True)))
    items = [delivery_item(row, history[row.id]) for row in page]
    return items, next_cursor(rows, DELIVERY_SORT, "-id", query.limit)


def retry_delivery(webhook_id: int, delivery_id: int) -> None:
    """Make the delivery pending and due now, whatever its state (a failed or a sent one is
    sent again, with the same webhook-id): one conditional UPDATE. A delivery leased to a
    worker right now stays leased (its send goes on; due again once the lease ends)."""
    stmt = (
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id, _deliveries.c.endpoint_id == webhook_id)
        .values(state=PENDING, next_attempt_at=now(), finished_at=None)
    )
    if not db.session.execute(stmt).rowcount:  # type: ignore[attr-defined]
        raise NotFoundError(f"Delivery {delivery_id} of webhook {webhook_id} does not exist.")
