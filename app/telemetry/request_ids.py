"""Request ids: the client's X-Request-ID if sane, else a new one; every log line carries it."""

import random
import re

from flask import g, has_request_context, request

from app.context import current_g

REQUEST_ID_HEADER = "X-Request-ID"
_ENVIRON_KEY = "HTTP_X_REQUEST_ID"  # where a WSGI server puts it
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
    here = current_g()  # looked up once, not twice
    request_id: str | None = here.get("request_id")
    if request_id is None:
        # From the environ: request.headers made its EnvironHeaders for this alone on a GET.
        sent = request.environ.get(_ENVIRON_KEY, "")
        request_id = here.request_id = request_id_from(sent)
    return request_id


def current_key_prefix() -> str:
    """Return the calling API key's public prefix, or '-' (never its secret)."""
    if not has_request_context():
        return "-"
    return str(getattr(g.get("api_key"), "prefix", "-"))
