"""Sessions: sign-in, access and refresh tokens, rotation with reuse detection, revocation.

Tokens are 256 random bits, shown once and stored only as SHA-256 hashes (as API keys'
secrets are, api_keys.hash_secret says why no slow hash): ``uma_...`` an access token,
``umr_...`` a refresh token, told apart from an API key's ``umk_...`` by the prefix.

A refresh token works once: one conditional UPDATE swaps the session's pair where the
presented hash is still the current one, so of concurrent refreshes exactly one matches a
row; the spent hash is kept (spent_refresh_token), and presenting it again revokes the
whole session (reuse detection: a thief and the client both hold it). Every revocation
reaches every process at commit on PostgreSQL (NOTIFY on the API keys' channel), within
CACHE_SECONDS elsewhere, at once in this process.
"""

import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Connection, Row, Table, case, event, func, insert, or_, select, true, update

from app.config import current_settings
from app.db.session import autocommit_engine, db
from app.db.types import folded
from app.errors import NotFoundError
from app.models import Group, GroupMember, SpentRefreshToken, User, UserSession
from app.schemas.scopes import ALL_SCOPES
from app.schemas.sessions import SessionListQuery
from app.services import api_keys, events
from app.services.api_keys import KEY_CACHE_SECONDS, REVOKED_CHANNEL, Pacer, hash_secret
from app.services.pagination import SortKey, next_cursor, paginate

ACCESS_TAG: Final = "uma"
REFRESH_TAG: Final = "umr"
_ACCESS = re.compile(rf"{ACCESS_TAG}_[A-Za-z0-9_-]{{43}}")
_REFRESH = re.compile(rf"{REFRESH_TAG}_[A-Za-z0-9_-]{{43}}")
CACHE_SECONDS = KEY_CACHE_SECONDS
LAST_USED_INTERVAL = timedelta(minutes=1)

_users = cast(Table, User.__table__)
_sessions = cast(Table, UserSession.__table__)
_spent = cast(Table, SpentRefreshToken.__table__)
_groups = cast(Table, Group.__table__)
_members = cast(Table, GroupMember.__table__)


@dataclass(frozen=True)
class Issued:
    """A new pair of tokens, shown once."""

    session_id: int
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class SessionInfo:
    """What a request needs of its access token: a plain value, safe to cache."""

    id: int
    user_id: int
    username: str
    scopes: tuple[str, ...]
    expires_at: datetime


def is_access_token(token: str) -> bool:
    """Whether ``token`` has the form of an access token (whether or not it is one)."""
    return _ACCESS.fullmatch(token) is not None


def _new_token(tag: str) -> tuple[str, str]:
    token = f"{tag}_{secrets.token_urlsafe(32)}"
    return token, hash_secret(token)


def find_account(login: str) -> Row[*tuple[Any, ...]] | None:
    """The user a sign-in names by username or email (any letter case): id, hash, active."""
    login = unicodedata.normalize("NFC", login)
    by_name = folded(_users.c.username) == folded(login)
    stmt = (
        select(_users.c.id, _users.c.password_hash, _users.c.active)
        .where(or_(by_name, folded(_users.c.email) == folded(login)))
        # A username that is someone else's email: the username wins.
        .order_by(case((by_name, 0), else_=1))
        .limit(1)
    )
    return db.session.execute(stmt).one_or_none()


def _pair(now: datetime) -> tuple[dict[str, Any], str, str]:
    settings = current_settings()
    access, access_hash = _new_token(ACCESS_TAG)
    refresh, refresh_hash = _new_token(REFRESH_TAG)
    values = {
        "access_token_hash": access_hash,
        "refresh_token_hash": refresh_hash,
        "access_expires_at": now + timedelta(minutes=settings.ACCESS_TOKEN_TTL),
        "refresh_expires_at": now + timedelta(days=settings.REFRESH_TOKEN_TTL),
    }
    return values, access, refresh


def _expires_in() -> int:
    return current_settings().ACCESS_TOKEN_TTL * 60


def start_session(user_id: int, new_hash: str | None) -> Issued:
    """Open a session for a user who just proved their password (and store ``new_hash``,
    the password's hash at today's parameters, if it changed). Two statements at most."""
    values, access, refresh = _pair(datetime.now(UTC))
    stmt = insert(_sessions).values(user_id=user_id, **values).returning(_sessions.c.id)
    session_id: int = db.session.execute(stmt).scalar_one()
    # Signing in is public: the actor is the user who just proved their password.
    actor = ("user", str(user_id), f"session {session_id}")
    events.record("session.created", "session", session_id, {"user_id": [None, user_id]}, actor)
    if new_hash is not None:
        # Not a change of the representation: neither version nor updated_at moves.
        db.session.execute(
            update(_users).where(_users.c.id == user_id).values(password_hash=new_hash)
        )
    return Issued(session_id, access, refresh, _expires_in())


@dataclass(frozen=True)
class Refused:
    """A refresh that gave nothing; ``revoked``: a spent token, whose session is now revoked."""

    revoked: bool


def refresh_session(refresh_token: str) -> Issued | Refused:
    """Rotate the session whose current refresh token this is, in one conditional UPDATE.

    Returns Refused rather than raising, so that a reuse's revocation commits.
    """
    if _REFRESH.fullmatch(refresh_token) is None:
        return Refused(revoked=False)
    presented = hash_secret(refresh_token)
    now = datetime.now(UTC)
    values, access, refresh = _pair(now)
    active_users = select(_users.c.id).where(_users.c.active == true())
    rotate = (
        update(_sessions)
        .where(
            _sessions.c.refresh_token_hash == presented,
            _sessions.c.revoked_at.is_(None),
            _sessions.c.refresh_expires_at > now,
            _sessions.c.user_id.in_(active_users),
        )
        .values(**values, refreshed_at=now, refresh_count=_sessions.c.refresh_count + 1)
    )
    # Checked by rowcount, then read by the new hash: MariaDB has no UPDATE ... RETURNING.
    if db.session.execute(rotate).rowcount == 1:  # type: ignore[attr-defined]
        session_id: int = db.session.execute(
            select(_sessions.c.id).where(
                _sessions.c.refresh_token_hash == values["refresh_token_hash"]
            )
        ).scalar_one()
        db.session.execute(insert(_spent).values(token_hash=presented, session_id=session_id))
        return Issued(session_id, access, refresh, _expires_in())
    spent = db.session.execute(
        select(_spent.c.session_id).where(_spent.c.token_hash == presented)
    ).scalar_one_or_none()
    if spent is None:
        return Refused(revoked=False)
    if _revoke(_sessions.c.id == spent, f"session:{spent}"):
        # A change the refused request commits (the 401 says nothing of it): recorded too.
        events.record("session.revoked", "session", spent, {"reason": [None, "refresh_reused"]})
    return Refused(revoked=True)


def _revoke(where: Any, payload: str) -> int:
    result = db.session.execute(
        update(_sessions)
        .where(where, _sessions.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    announce_revocation(payload)
    return int(result.rowcount)  # type: ignore[attr-defined]


def announce_revocation(payload: str) -> None:
    """Forget the revoked credentials here now and again at commit, and in every process
    at commit (PostgreSQL). Again at commit: a request of this process between now and the
    commit would look the token up as it still is, and cache that."""
    if current_settings().backend == "postgresql":
        db.session.execute(select(func.pg_notify(REVOKED_CHANNEL, payload)))
    forget_revoked(payload)
    event.listen(db.session(), "after_commit", lambda _session: forget_revoked(payload), once=True)


def revoke_session(user_id: int, session_id: int) -> None:
    """Revoke one of the user's own live sessions, or raise NotFoundError (others' too)."""
    mine = (_sessions.c.id == session_id) & (_sessions.c.user_id == user_id)
    if _revoke(mine, f"session:{session_id}") == 0:
        raise NotFoundError(f"Session {session_id} does not exist.")
    events.record("session.revoked", "session", session_id, {"user_id": [user_id, user_id]})


def revoke_user_sessions(user_id: int, keep: int | None = None) -> int:
    """Revoke every live session of the user but ``keep``; return how many."""
    where = _sessions.c.user_id == user_id
    if keep is not None:
        where = where & (_sessions.c.id != keep)
    revoked = _revoke(where, f"user:{user_id}")
    if revoked:
        # One event for them all, on the user (MariaDB's UPDATE cannot return their ids).
        events.record("session.revoked", "user", user_id, {"sessions": [revoked, 0]})
    return revoked


SESSION_SORT = SortKey((UserSession.id,), descending=True)
SESSION_COLUMNS = (
    _sessions.c.id,
    _sessions.c.created_at,
    _sessions.c.refreshed_at,
    _sessions.c.last_used_at,
    _sessions.c.refresh_expires_at,
)


def list_sessions(
    user_id: int, query: SessionListQuery
) -> tuple[list[Row[*tuple[Any, ...]]], str | None]:
    """One page of the user's live sessions, newest first, and the cursor of the next."""
    stmt = select(*SESSION_COLUMNS).where(
        _sessions.c.user_id == user_id,
        _sessions.c.revoked_at.is_(None),
        _sessions.c.refresh_expires_at > datetime.now(UTC),
    )
    stmt = paginate(stmt, SESSION_SORT, "-id", query.cursor, query.limit)
    rows = list(db.session.execute(stmt))
    return rows[: query.limit], next_cursor(rows, SESSION_SORT, "-id", query.limit)


def session_item(row: Row[*tuple[Any, ...]], current: int) -> dict[str, Any]:
    """The row as SessionRead's fields, in order."""
    return {**row._asdict(), "current": row.id == current}


# Verified access tokens by hash: a hot token costs no database round trip.
_verified: dict[str, tuple[SessionInfo, float]] = {}
_verified_lock = threading.Lock()
_touched = Pacer(LAST_USED_INTERVAL)


def _lookup(digest: str) -> tuple[Row[*tuple[Any, ...]], tuple[str, ...]] | None:
    # A connection of its own, in autocommit, as api_keys._lookup says why.
    stmt = (
        select(
            _sessions.c.id,
            _sessions.c.user_id,
            _sessions.c.access_expires_at,
            _sessions.c.revoked_at,
            _users.c.username,
            _users.c.active,
        )
        .join(_users, _users.c.id == _sessions.c.user_id)
        .where(_sessions.c.access_token_hash == digest)
    )
    with autocommit_engine().connect() as connection:
        row = connection.execute(stmt).one_or_none()
        return None if row is None else (row, _scopes_of(connection, row.user_id))


def _scopes_of(connection: Connection, user_id: int) -> tuple[str, ...]:
    """The union of the user's groups' scopes, in ALL_SCOPES' order."""
    stmt = (
        select(_groups.c.scopes)
        .join(_members, _members.c.group_id == _groups.c.id)
        .where(_members.c.user_id == user_id)
    )
    granted: set[str] = set()
    for scopes in connection.execute(stmt).scalars():
        granted.update(scopes)
    return tuple(scope for scope in ALL_SCOPES if scope in granted)


def _always() -> bool:
    return True


def authenticate(token: str, may_look_up: Callable[[], bool] = _always) -> SessionInfo | None:
    """Return the live session of this access token, or None (as api_keys.authenticate)."""
    if _ACCESS.fullmatch(token) is None:
        return None
    digest = hash_secret(token)
    now = datetime.now(UTC)
    with _verified_lock:
        cached = _verified.get(digest)
    if cached is not None and time.monotonic() < cached[1]:
        return cached[0] if cached[0].expires_at > now else None
    if cached is None and not may_look_up():
        return None
    found = _lookup(digest)
    row, scopes = found if found is not None else (None, ())
    if row is None or row.revoked_at is not None or not row.active or row.access_expires_at <= now:
        with _verified_lock:
            _verified.pop(digest, None)
        return None
    # The union of the user's groups' scopes, as of this look-up: a change of membership or
    # of a group's scopes forgets the cached session (services/groups.py).
    info = SessionInfo(row.id, row.user_id, row.username, scopes, row.access_expires_at)
    with _verified_lock:
        _verified[digest] = (info, time.monotonic() + CACHE_SECONDS)
    return info


def record_use(session: SessionInfo) -> None:
    """Write last_used_at at most once a minute per session, outside the request's work."""
    if not _touched.due(session.id):
        return
    now = datetime.now(UTC)
    stmt = (
        update(_sessions)
        .where(_sessions.c.id == session.id)
        .where(
            or_(
                _sessions.c.last_used_at.is_(None),
                _sessions.c.last_used_at <= now - LAST_USED_INTERVAL,
            )
        )
        .values(last_used_at=now)
    )
    with autocommit_engine().connect() as connection:
        connection.execute(stmt)


def forget_revoked(payload: str) -> None:
    """Drop what a revocation names from this process's caches: ``session:<id>``,
    ``user:<id>`` (every session of the user), or else an API key's prefix."""
    kind, _, number = payload.partition(":")
    if kind in {"session", "user"} and number.isdigit():
        field = "id" if kind == "session" else "user_id"
        with _verified_lock:
            for digest in [
                d for d, (s, _) in _verified.items() if getattr(s, field) == int(number)
            ]:
                del _verified[digest]
        return
    api_keys.forget_key(payload)


def forget_everything() -> None:
    """Empty this process's caches of keys and sessions (revocations may have been missed)."""
    with _verified_lock:
        _verified.clear()
    api_keys.forget_all_keys()
