"""Admission before a body: the server asks the app whether a request may send its body, and
how large, before it reads a byte of it (app.server.bridge).

Routing and authentication answer, with no side effect: a request without a route or a
valid key is then answered without its body, by the whole pipeline as any other request
(counted, rate limited, its 401 or 404), and never writes its body anywhere. Six 200 MB
unauthenticated bodies once filled 577 MB of disk before their 401s.
"""

from typing import Any

from flask import Flask, current_app, request

from app.config import SETTINGS, Settings
from app.server.types import BodyLimit
from app.web import auth


def body_limit(app: Flask) -> BodyLimit:
    """The app's admission: an environ without its body -> the bytes the body may have, or
    None when the request may send none (no route, no valid key or scope)."""

    def limit(environ: dict[str, Any]) -> int | None:
        with app.request_context(environ):
            if not auth.may_send_body():
                return None
            settings: Settings = current_app.extensions[SETTINGS]
            view = current_app.view_functions[request.endpoint or ""]
            if getattr(view, "streams_body", False):
                return settings.MAX_UPLOAD_BYTES  # an import: read in chunks, any size
            return settings.MAX_CONTENT_LENGTH

    return limit
