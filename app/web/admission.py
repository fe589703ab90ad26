"""Admission before a body: the server asks the app whether a request may send its body, and
how large, before it reads a byte of it (app.server.bridge).

Routing and authentication answer, with no side effect: a request without a route or a
valid key is then answered without its body, by the whole pipeline as any other request
(counted, rate limited, its 401 or 404), and never writes its body anywhere. Six 200 MB
unauthenticated bodies once filled 577 MB of disk before their 401s.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request

from app.config import SETTINGS, Settings
from app.server.turns import TurnRules
from app.server.types import BodyLimit
from app.services import passwords
from app.web import auth

F = TypeVar("F", bound=Callable[..., Any])
# Sign-ins waiting for a place, a process: about a second of the hashing's pace (~40 a
# second on 2 CPUs), and no more than one address may have in flight (CLIENT_MAX_REQUESTS).
TURN_QUEUE = 64
TURN_WAIT_SECONDS = 10.0


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


def takes_turns(view: F) -> F:
    """Mark a view that hashes a password for anyone who asks (sign-in, sign-up): under the
    shipped server its requests wait for a place on the event loop (app.server.turns)."""
    view.takes_turns = True  # type: ignore[attr-defined]
    return view


def turn_rules(app: Flask) -> TurnRules:
    """The routes of the views marked ``takes_turns`` (their paths are fixed), with as many
    places a process as the hashing admits (app.services.passwords), so a request that had
    its turn finds the hashing free."""
    routes = frozenset(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "takes_turns", False)
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    )
    _threads, places = passwords.sizes(app.extensions[SETTINGS])
    refusal = passwords.HashingBusyError().detail
    return TurnRules(routes, places, TURN_QUEUE, TURN_WAIT_SECONDS, refusal)
