"""Retries of POSTs (API.md, "Retries"): a request naming an Idempotency-Key claims it
before its work, keeps its response after, and a retry gets that response again.

Each call is one statement that commits as it runs (the view calls them under
``autocommit()``): a claim must be seen by a concurrent retry before the work is done, so
it cannot wait for the work's own transaction.
"""

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, select, update

from app.config import current_settings
from app.db.session import db
from app.db.types import insert_for
from app.errors import AppError, UnprocessableError
from app.models import IdempotencyKey

_keys = cast(Table, IdempotencyKey.__table__)
# A claim with no response after this long was abandoned (its process died mid-request):
# longer than any request may run (the statement deadline is seconds), so never a live one.
ABANDONED_AFTER = timedelta(minutes=2)
# Expired keys are deleted by the requests themselves, at most this often per process.
PURGE_EVERY_SECONDS = 60.0
_purged = {"at": 0.0}
_purge_lock = threading.Lock()


class IdempotencyKeyInUseError(AppError):
    """The first request with this key is still running."""

    status = 409

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still running; retry after it ends."
        )


class IdempotencyKeyReusedError(UnprocessableError):
    """The key was used before with another request."""

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used with another request; use a new key for it.",
            errors=[
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "already used with another method, path or body",
                    "type": "idempotency_key_reused",
                }
            ],
        )


@dataclass(frozen=True)
class Kept:
    """The first response to a request with this key."""

    status: int
    body: bytes
    location: str | None
    etag: str | None


def claim(api_key_id: int, key: str, fingerprint: str) -> int | Kept:
    """Claim the key for this request (its claim's id), or return the response kept for it.

    Raise IdempotencyKeyReusedError for the key with another request, and
    IdempotencyKeyInUseError while the first request runs.
    """
    _purge_now_and_then()
    settings = current_settings()
    now = datetime.now(UTC)
    expires_at = now + timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    # Twice at most: a stale claim found is deleted, then claimed afresh.
    for _ in range(2):
        new = (
            insert_for(settings.backend, IdempotencyKey, skip_conflicts=True)
            .values(api_key_id=api_key_id, key=key, fingerprint=fingerprint, expires_at=expires_at)
            .returning(_keys.c.id)
        )
        claimed: int | None = db.session.execute(new).scalar_one_or_none()
        if claimed is not None:
            return claimed
        found = db.session.execute(
            select(IdempotencyKey).where(_keys.c.api_key_id == api_key_id, _keys.c.key == key)
        ).scalar_one_or_none()
        if found is None:
            continue  # purged between the two statements
        abandoned = found.status is None and found.created_at < now - ABANDONED_AFTER
        if found.expires_at <= now or abandoned:
            db.session.execute(delete(_keys).where(_keys.c.id == found.id))
            continue
        if found.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError
        if found.status is None or found.body is None:
            raise IdempotencyKeyInUseError
        return Kept(found.status, found.body, found.location, found.etag)
    raise IdempotencyKeyInUseError  # claimed by another request in between, twice


def keep(claim_id: int, response: Kept) -> None:
    """Keep the response of the request that holds this claim."""
    db.session.execute(
        update(_keys)
        .where(_keys.c.id == claim_id)
        .values(
            status=response.status,
            body=response.body,
            location=response.location,
            etag=response.etag,
        )
    )


def release(claim_id: int) -> None:
    """Give the claim up: the request failed, so a retry runs it again."""
    db.session.execute(delete(_keys).where(_keys.c.id == claim_id))


def _purge_now_and_then() -> None:
    # No cron job for the user to set up: the requests that use keys delete the expired
    # ones, once a minute per process, by the expires_at index.
    now = time.monotonic()
    with _purge_lock:
        if now - _purged["at"] < PURGE_EVERY_SECONDS:
            return
        _purged["at"] = now
    db.session.execute(delete(_keys).where(_keys.c.expires_at <= datetime.now(UTC)))
