"""Request bodies and query strings checked before any view code runs, and streamed bodies
that fail rather than end when cut short."""

import logging
import re
import sys
from collections.abc import Callable
from typing import IO, Any, TypeVar

from flask import current_app, request
from werkzeug.exceptions import BadRequest, ClientDisconnected

from app.context import current_request
from app.errors import BadRequestError, UnprocessableError, UnsupportedMediaTypeError

log = logging.getLogger(__name__)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
F = TypeVar("F", bound=Callable[..., Any])


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or bool(
        re.fullmatch(r"application/[\w.-]+\+json", mimetype)
    )


def streamed_body(view: F) -> F:
    """Mark a view that reads its own (streamed, unbounded) body instead of a JSON object."""
    view.streams_body = True  # type: ignore[attr-defined]
    return view


class IncompleteBodyError(BadRequestError):
    """The body ended before it was whole: the client went away, or its length lied."""


class WholeBody:
    """A streamed request body that fails, rather than ends, when it is cut short.

    WSGI servers that frame the body themselves (gunicorn, granian) report a connection
    closed before ``Content-Length`` bytes as a plain end of file, and werkzeug then passes
    that on as one: a reader of a cut upload would see a shorter, complete-looking file.
    A chunked body cut before its last chunk makes the server raise instead.
    """

    def __init__(self, stream: IO[bytes], declared: int | None) -> None:
        self._stream = stream
        self._declared = declared
        self._received = 0

    def read(self, size: int = -1, /) -> bytes:
        """Read like the stream; raise IncompleteBodyError where the body was cut short."""
        try:
            data = self._stream.read(size)
        except (OSError, ValueError, ClientDisconnected) as exc:
            raise self._cut(f"the connection failed after {self._received:,} bytes") from exc
        self._received += len(data)
        declared = self._declared
        if not data and size != 0 and declared is not None and self._received < declared:
            raise self._cut(f"it ended after {self._received:,} of {declared:,} bytes")
        return data

    def _cut(self, how: str) -> IncompleteBodyError:
        # The client may not be there to read the answer: say it in the log as well.
        log.warning("request body cut short: %s; nothing of it was kept", how)
        return IncompleteBodyError(f"The body was cut short ({how}); nothing of it was kept.")


def no_body(view: F) -> F:
    """Mark a write that takes no body (PUT of a membership): an empty one, not JSON."""
    view.takes_no_body = True  # type: ignore[attr-defined]
    return view


def whole_body() -> WholeBody:
    """Return the request's streamed body, which raises rather than ends if cut short."""
    return WholeBody(request.stream, request.content_length)


def reject_repeated_parameters() -> None:
    """Refuse a query string that gives a parameter twice: each of ours takes one value, and
    the parameter parser would keep the first silently (``limit=5&limit=x`` read as 5)."""
    req = current_request()
    if b"&" not in req.query_string:
        return  # one parameter at most: the common case costs one byte search
    for name, values in req.args.lists():
        if len(values) > 1:
            raise BadRequestError(f"The query parameter {name!r} is given more than once.")


def require_json_body() -> None:
    """Reject a write whose body is not a JSON object before any view code runs."""
    req = current_request()
    if req.method not in _BODY_METHODS or req.routing_exception is not None:
        return
    view = current_app.view_functions[req.endpoint or ""]
    if getattr(view, "streams_body", False):
        # No size limit either: the view reads the stream in chunks. (None would mean
        # "the app's MAX_CONTENT_LENGTH" to Flask.)
        req.max_content_length = sys.maxsize
        return
    if getattr(view, "takes_no_body", False):
        if req.content_length or (req.content_length is None and req.get_data()):
            raise BadRequestError("This operation takes no body.")
        return
    if not _is_json(req.mimetype):
        raise UnsupportedMediaTypeError("The body must be JSON (Content-Type: application/json).")
    if req.content_length is None:
        # A chunked body: werkzeug stops reading at MAX_CONTENT_LENGTH without a word, so
        # the JSON would look cut short (a 400). Read one byte past the limit: that raises
        # the 413 a declared length over the limit gets.
        req.get_data(cache=True)
        req.stream.read(1)
    try:
        body = req.get_json()
    except BadRequest as exc:
        raise BadRequestError("The body is not well-formed JSON.") from exc
    except RecursionError as exc:
        # json.loads recurses once per nesting level; no body of ours nests past a few.
        raise BadRequestError("The body's JSON is nested too deeply.") from exc
    if not isinstance(body, dict):
        raise UnprocessableError(
            "The body must be a JSON object.",
            errors=[{"loc": ["body"], "msg": "Input should be an object", "type": "model_type"}],
        )
