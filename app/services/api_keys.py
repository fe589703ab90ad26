"""API keys: issue, look up, revoke. Secrets are shown once and stored only as hashes."""

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.config import current_settings
from app.db.session import autocommit_engine, db
from app.errors import NotFoundError
from app.models import ApiKey
from app.models.api_key import PREFIX_LENGTH
from app.schemas.scopes import ALL_SCOPES, Scope
from app.services import events

__all__ = ["ALL_SCOPES", "Scope"]  # re-exported: callers name scopes with the keys

TOKEN_TAG = "umk"  # noqa: S105 - a public marker ("user-management key"), not a secret
_TOKEN = re.compile(rf"{TOKEN_TAG}_([0-9a-f]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43}})")
# Compared against when the prefix is unknown, so that case costs what a wrong secret costs.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
LAST_USED_INTERVAL = timedelta(minutes=1)


class Pacer:
    """Says, per credential, whether its last_used_at is due a write: at most once an
    interval in this process (the UPDATE's WHERE keeps other processes to the same pace)."""

    def __init__(self, interval: timedelta) -> None:
        self._seconds = interval.total_seconds()
        self._last: dict[object, float] = {}
        self._lock = threading.Lock()

    def due(self, credential: object) -> bool:
        """Whether to write now; if so, the write is counted from now."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(credential)
            if last is not None and now - last < self._seconds:
                return False
            self._last[credential] = now
            return True


_touched = Pacer(LAST_USED_INTERVAL)  # by prefix: unique across databases too


def hash_secret(secret: str) -> str:
    """Hash a key's secret.

    A plain SHA-256 is right here, unlike for passwords: the secret is 256 random bits, so
    no dictionary or brute force can invert the hash, and a slow KDF (bcrypt, argon2) would
    only add ~100 ms to every request.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    name: str, scopes: list[Scope], expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Add a key; return it with its full token, which is never retrievable again."""
    for _ in range(5):
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            prefix=prefix,
            secret_hash=hash_secret(secret),
            name=name,
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        try:
            with db.session.begin_nested():
                db.session.add(key)
        except IntegrityError:
            continue  # a prefix collision (48 random bits): draw again
        fields = {"prefix": prefix, "name": name, "scopes": key.scopes, "expires_at": expires_at}
        events.record("api_key.created", "api_key", key.id, events.created(fields, list(fields)))
        return key, f"{TOKEN_TAG}_{prefix}_{secret}"
    msg = "could not draw a unique key prefix"
    raise RuntimeError(msg)


def list_api_keys() -> list[ApiKey]:
    """Return every key, newest first."""
    return list(db.session.execute(select(ApiKey).order_by(ApiKey.id.desc())).scalars())


def has_api_keys() -> bool:
    """Say whether any key exists (revoked and expired ones count)."""
    return db.session.execute(select(ApiKey.id).limit(1)).first() is not None


def revoke_api_key(prefix: str) -> ApiKey:
    """Mark a key revoked from now on, or raise NotFoundError."""
    key = db.session.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one_or_none()
    if key is None:
        raise NotFoundError(f"No API key has the prefix {prefix!r}.")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        db.session.flush()
        revoked_at = [None, key.revoked_at.isoformat()]
        events.record("api_key.revoked", "api_key", key.id, {"revoked_at": revoked_at})
    if current_settings().backend == "postgresql":
        # Delivered when this transaction commits, to every process's listener (factory):
        # the key stops working everywhere at once, not when each cache expires.
        db.session.execute(select(func.pg_notify(REVOKED_CHANNEL, prefix)))
    forget_key(prefix)
    return key


@dataclass(frozen=True)
class KeyInfo:
    """What a request needs of its key: a plain value, safe to cache across requests."""

    id: int
    prefix: str
    name: str
    scopes: tuple[str, ...]
    expires_at: datetime | None


# Verified keys, by (prefix, hash of the secret): a hot key costs no database round trip.
# Revocation is seen at once in this process, at its commit in the servers' processes on
# PostgreSQL (REVOKED_CHANNEL), and within KEY_CACHE_SECONDS elsewhere.
KEY_CACHE_SECONDS = 10.0
REVOKED_CHANNEL = "api_key_revoked"
_verified: dict[tuple[str, str], tuple[KeyInfo, float]] = {}
_verified_lock = threading.Lock()


def _live(key: KeyInfo) -> bool:
    return key.expires_at is None or key.expires_at > datetime.now(UTC)


def _lookup(prefix: str) -> Row[Any] | None:
    # A connection of its own, in autocommit: the request's session stays untouched, so
    # its reads can run without a transaction of their own.
    table = ApiKey.__table__
    with autocommit_engine().connect() as connection:
        return connection.execute(select(table).where(table.c.prefix == prefix)).one_or_none()


def looks_like_token(token: str) -> bool:
    """Whether ``token`` has the form of one of our keys (whether or not it is one)."""
    return _TOKEN.fullmatch(token) is not None


def _always() -> bool:
    return True


def authenticate(token: str, may_look_up: Callable[[], bool] = _always) -> KeyInfo | None:
    """Return the live key this token belongs to, or None; unknown and wrong cost the same.

    A token this process has never verified is looked up only if ``may_look_up()`` (asked
    then, not before: the rate limit's check of the client's address), so that a refused
    client's keys cost no database round trip. Every such token, unknown prefix or wrong
    secret, is then refused the same way, without a lookup or a compare; one verified
    before is looked up again when its cache runs out, as always.
    """
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    prefix, secret = match.groups()
    digest = hash_secret(secret)
    with _verified_lock:
        cached = _verified.get((prefix, digest))
    if cached is not None and time.monotonic() < cached[1]:
        return cached[0] if _live(cached[0]) else None
    if cached is None and not may_look_up():
        return None
    row = _lookup(prefix)
    expected = row.secret_hash if row is not None else _DUMMY_HASH
    if not hmac.compare_digest(digest, expected) or row is None or row.revoked_at is not None:
        _forget_token(prefix, digest)
        return None
    key = KeyInfo(row.id, row.prefix, row.name, tuple(row.scopes), row.expires_at)
    if not _live(key):
        _forget_token(prefix, digest)
        return None
    with _verified_lock:
        _verified[(prefix, digest)] = (key, time.monotonic() + KEY_CACHE_SECONDS)
    return key


def _forget_token(prefix: str, digest: str) -> None:
    # Dead since it was verified (revoked, expired): no longer "verified before", so a
    # spent address retrying it costs no lookup either.
    with _verified_lock:
        _verified.pop((prefix, digest), None)


def forget_key(prefix: str) -> None:
    """Drop a key from this process's cache of verified keys."""
    with _verified_lock:
        for cached in [k for k in _verified if k[0] == prefix]:
            del _verified[cached]


def forget_all_keys() -> None:
    """Empty this process's cache of verified keys (revocations may have been missed)."""
    with _verified_lock:
        _verified.clear()


def record_use(key: KeyInfo) -> None:
    """Write last_used_at at most once a minute per key, outside the request's transaction."""
    if not _touched.due(key.prefix):
        return
    now = datetime.now(UTC)
    # The WHERE keeps other processes, with their own memory of writes, to the same pace.
    stmt = (
        update(ApiKey)
        .where(ApiKey.id == key.id)
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_INTERVAL))
        .values(last_used_at=now)
    )
    with autocommit_engine().connect() as connection:
        connection.execute(stmt)
