"""Reads that may be a little stale go to a streaming replica; a client reads its own writes.

With DATABASE_REPLICA_URL set, the request session (app/db/session.py) sends the plain
SELECTs of an ``autocommit()`` block (lists, a user or post by id) to the replica; writes,
anything in a ``transaction()`` block, API-key lookups and the CLI stay on the primary.
This is SQLAlchemy's documented routing: ``Session.get_bind`` chooses by the statement.

A replica replays the primary's WAL a little later, so a client that just wrote may not
see its write there. Every successful write answers with ``Consistency-Token``, the
primary's WAL position after it; a read that sends the token back is served by the
replica only once the replica has replayed past it (``pg_last_wal_replay_lsn()``), else
by the primary. A read without one may be stale by the replica's lag.
"""

import logging
import re
from collections.abc import Callable
from http import HTTPStatus

from flask import Response, g, has_request_context, request
from sqlalchemy import Engine, Select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import UpdateBase

log = logging.getLogger(__name__)

REPLICA = "replica"  # the replica's bind key
TOKEN_HEADER = "Consistency-Token"  # noqa: S105 - a header's name, not a secret
# What pg_lsn prints: two hexadecimal halves. Anything else is not a token of ours.
_LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
_FRESH = "_replica_fresh"  # in flask.g: whether this request may read the replica
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_plain_read(clause: object) -> bool:
    """Whether the statement only reads (a SELECT without FOR UPDATE, and without a WITH
    that writes: a write and its change event, app/services/events.py)."""
    return (
        isinstance(clause, Select)
        and clause._for_update_arg is None
        and not any(
            isinstance(cte.element, UpdateBase) for cte in getattr(clause, "_independent_ctes", ())
        )
    )


def replica_is_fresh(replica: Engine) -> bool:
    """Whether this request's reads may go to the replica: it sent no token, or the replica
    has replayed past the one it sent (asked once per request). Outside a request: no."""
    if not has_request_context():
        return False
    fresh: bool | None = g.get(_FRESH)
    if fresh is None:
        fresh = _caught_up(replica, request.headers.get(TOKEN_HEADER))
        setattr(g, _FRESH, fresh)
    return fresh


def _caught_up(replica: Engine, token: str | None) -> bool:
    if token is None:
        return True
    if not _LSN.fullmatch(token):
        return False  # not a position we gave: the primary is never stale
    try:
        with replica.connect() as conn:
            # NULL on a server that is not in recovery: a primary is never behind itself.
            query = text("SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(:t AS pg_lsn), true)")
            return bool(conn.execute(query, {"t": token}).scalar_one())
    except SQLAlchemyError:
        log.warning("the replica did not say how far it has replayed; reading the primary")
        return False


def token_after_writes(primary: Engine) -> Callable[[Response], Response]:
    """The after_request hook that gives a successful write's response its token."""

    def add_token(response: Response) -> Response:
        if request.method in _SAFE_METHODS or response.status_code >= HTTPStatus.BAD_REQUEST:
            return response
        try:
            with primary.connect() as conn:
                # The insert position: at or past our commit record even when commits do not
                # wait for the WAL flush (synchronous_commit = off).
                lsn = conn.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one()
        except SQLAlchemyError:
            log.warning("no consistency token: the primary did not say its WAL position")
            return response
        response.headers[TOKEN_HEADER] = str(lsn)
        return response

    return add_token
