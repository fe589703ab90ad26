"""Request ids: the client's X-Request-ID if sane, else a new one; every log line carries it."""

import random
import re

from flask import g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(sent: str) -> str:
    """The client's request id if it is sane, else a new one (32 hex digits)."""
    if _SANE_REQUEST_ID.fullmatch(sent):
        return sent
    # Unique, not secret: uuid4 reads os.urandom, a system call a request (~11 us of the
    # server's event-loop thread under load, py-spy); random reseeds itself after a fork.
    return f"{random.getrandbits(128):032x}"


def current_request_id() -> str:
    """Return this request's id (the client's if sane, else a new one), or '-' outside one."""
    if not has_request_context():
        return "-"
    request_id: str | None = g.get("request_id")
    if request_id is None:
        request_id = g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER, ""))
    return request_id


def current_key_prefix() -> str:
    """Return the calling API key's public prefix, or '-' (never its secret)."""
    if not has_request_context():
        return "-"
    return str(getattr(g.get("api_key"), "prefix", "-"))
