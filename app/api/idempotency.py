"""The Idempotency-Key header on POSTs that create: a retry gets the first response again
(with Idempotency-Replayed: true) and creates nothing."""

import functools
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import ParamSpec

from flask import request
from sqlalchemy.exc import SQLAlchemyError

from app.db.session import autocommit, run_db
from app.errors import BadRequestError
from app.models.idempotency import KEY_MAX, KEY_PATTERN
from app.services import idempotency
from app.web.auth import current_key
from app.web.responses import Response

P = ParamSpec("P")
log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
REPLAYED = "Idempotency-Replayed"
_VALID_KEY = re.compile(KEY_PATTERN)


def _fingerprint() -> str:
    # The body as parsed and written back sorted: a retry that reorders or respaces the
    # same members is the same request.
    body = json.dumps(request.get_json(silent=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(kept: idempotency.Kept) -> Response:
    headers = {REPLAYED: "true"}
    if kept.location is not None:
        headers["Location"] = kept.location
    if kept.etag is not None:
        headers["ETag"] = kept.etag
    return Response(kept.body, status=kept.status, headers=headers, mimetype="application/json")


async def _release(claimed: int) -> None:
    try:
        async with autocommit():
            await run_db(idempotency.release, claimed)
    except SQLAlchemyError:
        # The request's own error says what went wrong; the claim lapses by itself
        # (idempotency.ABANDONED_AFTER).
        log.warning("could not release an idempotency key's claim", exc_info=True)


def idempotent(
    view: Callable[P, Awaitable[Response]],
) -> Callable[P, Awaitable[Response]]:
    """Keep the view's successful response for retries that send the same Idempotency-Key.

    Only a 2xx is kept: a refused request (409, 404) created nothing, and its retry runs
    again, so it gets the same refusal or, once the cause is gone, the success.
    """

    @functools.wraps(view)
    async def with_key(*args: P.args, **kwargs: P.kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return await view(*args, **kwargs)
        if not _VALID_KEY.fullmatch(key):
            msg = f"{HEADER} must be 1 to {KEY_MAX} visible ASCII characters."
            raise BadRequestError(msg)
        async with autocommit():
            claimed = await run_db(idempotency.claim, current_key().id, key, _fingerprint())
        if isinstance(claimed, idempotency.Kept):
            return _replay(claimed)
        try:
            response = await view(*args, **kwargs)
        except Exception:
            await _release(claimed)
            raise
        kept = idempotency.Kept(
            response.status_code,
            response.get_data(),
            response.headers.get("Location"),
            response.headers.get("ETag"),
        )
        async with autocommit():
            await run_db(idempotency.keep, claimed, kept)
        return response

    return with_key
