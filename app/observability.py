"""Request ids on every response and every log line."""

import logging
import random
import re
from typing import Any

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s key=%(api_key)s] %(name)s: %(message)s"


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


_base_record_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_record_factory(*args, **kwargs)
    record.request_id = current_request_id()
    record.api_key = current_key_prefix()
    return record


def configure_logging(level: str) -> None:
    """Give every log record a request id and log to stderr (once per process)."""
    # A record factory, not a handler filter: every handler (gunicorn's too) sees the id.
    logging.setLogRecordFactory(_record_with_request_id)
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not any(getattr(h, "_app_handler", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler._app_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def _set_request_id_header(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = current_request_id()
    return response


def init_app(app: Flask) -> None:
    """Echo or assign ``X-Request-ID`` on every response."""
    app.after_request(_set_request_id_header)
