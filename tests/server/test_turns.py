"""Sign-ins take turns on the event loop (app.server.turns): a waiting one holds no app
thread, a served one holds a thread of its own, past the queue or the wait the 503 comes
from the loop, and other requests are served meanwhile."""

import asyncio
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask import Flask

from app.config import SETTINGS as SETTINGS_KEY
from app.config import Settings
from app.server.bridge import WSGIBridge
from app.server.turns import TurnRules
from app.services import passwords
from app.web.admission import turn_rules
from tests.helpers import asgi_scope, asgi_status, serve_asgi

SIGN_IN = ("POST", "/auth/sessions")
SETTINGS = Settings(WEB_THREADS=2)


class SignIns:
    """A WSGI app whose sign-ins block until released; everything else answers at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.signed_in: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read()
        if environ["PATH_INFO"] == SIGN_IN[1]:
            self.release.wait(10)
            self.signed_in.append(body)
        start("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


def _rules(queue: int = 1, wait: float = 10.0) -> TurnRules:
    return TurnRules(frozenset({SIGN_IN}), places=1, queue=queue, wait=wait, refusal="busy")


def _sign_in(bridge: WSGIBridge, name: bytes) -> "asyncio.Future[list[Any]]":
    scope = asgi_scope(*SIGN_IN, headers={"content-length": str(len(name))})
    message = {"type": "http.request", "body": name, "more_body": False}
    return asyncio.ensure_future(serve_asgi(bridge, scope, [message]))


def test_a_waiting_sign_in_holds_no_thread_and_one_past_the_queue_is_refused_at_once() -> None:
    app = SignIns()
    # Two app threads: the first sign-in takes one; were the second to take the other while
    # it waits, the GET below could not be served before the release.
    bridge = WSGIBridge(app, SETTINGS, turns=_rules(queue=1))

    async def scene() -> tuple[list[int], int, list[Any]]:
        first = _sign_in(bridge, b"first")
        await asyncio.sleep(0.1)
        second = _sign_in(bridge, b"second")
        await asyncio.sleep(0.1)
        refused = await serve_asgi(bridge, asgi_scope(*SIGN_IN), [])
        read = await asyncio.wait_for(serve_asgi(bridge, asgi_scope("GET", "/users/1"), []), 5)
        assert not first.done()
        assert not second.done()
        app.release.set()
        return [asgi_status(await first), asgi_status(await second)], asgi_status(read), refused

    statuses, read, refused = asyncio.run(scene())
    assert statuses == [200, 200]
    assert app.signed_in == [b"first", b"second"]  # in their order of arrival
    assert read == 200
    assert asgi_status(refused) == 503
    assert (b"retry-after", b"1") in refused[0]["headers"]
    assert (b"content-type", b"application/problem+json") in refused[0]["headers"]
    assert json.loads(refused[1]["body"])["detail"] == "busy"


def test_a_sign_in_being_served_holds_none_of_the_app_threads() -> None:
    # One app thread: a sign-in served on it (its hash running) would leave the GET none.
    app = SignIns()
    bridge = WSGIBridge(app, Settings(WEB_THREADS=1), turns=_rules())

    async def scene() -> tuple[int, bool, int]:
        first = _sign_in(bridge, b"first")
        await asyncio.sleep(0.1)
        read = await asyncio.wait_for(serve_asgi(bridge, asgi_scope("GET", "/users/1"), []), 5)
        served = not first.done()
        app.release.set()
        return asgi_status(read), served, asgi_status(await first)

    read, served_meanwhile, signed_in = asyncio.run(scene())
    assert (read, served_meanwhile, signed_in) == (200, True, 200)
    assert app.signed_in == [b"first"]


def test_a_sign_in_that_waited_too_long_is_refused_and_never_reaches_the_app() -> None:
    app = SignIns()
    bridge = WSGIBridge(app, SETTINGS, turns=_rules(queue=5, wait=0.2))

    async def scene() -> list[Any]:
        first = _sign_in(bridge, b"first")
        await asyncio.sleep(0.1)
        late = await asyncio.wait_for(_sign_in(bridge, b"late"), 5)
        app.release.set()
        await first
        return late

    late = asyncio.run(scene())
    assert asgi_status(late) == 503
    assert app.signed_in == [b"first"]


def test_without_turns_a_sign_in_waits_on_an_app_thread() -> None:
    # The behaviour the turns replace, shown on the same scene: the two sign-ins take both
    # app threads, and the GET has none until the first is released.
    app = SignIns()
    bridge = WSGIBridge(app, SETTINGS)

    async def scene() -> bool:
        first = _sign_in(bridge, b"first")
        second = _sign_in(bridge, b"second")
        await asyncio.sleep(0.1)
        read = asyncio.ensure_future(serve_asgi(bridge, asgi_scope("GET", "/users/1"), []))
        await asyncio.sleep(0.3)
        waited = not read.done()
        app.release.set()
        await asyncio.gather(first, second, read)
        return waited

    assert asyncio.run(scene())


@pytest.mark.backends("sqlite", reason="the routes, whatever the database")
def test_the_anonymous_password_routes_take_turns_with_the_hashings_places(app: Flask) -> None:
    rules = turn_rules(app)
    assert rules.routes == {
        ("POST", "/auth/sessions"),
        ("POST", "/auth/signup"),
        ("POST", "/auth/invitations/accept"),
        ("POST", "/auth/password-reset/confirm"),
    }
    settings: Settings = app.extensions[SETTINGS_KEY]
    threads = passwords.threads_per_process(settings.WEB_CONCURRENCY)
    assert rules.places == passwords.admitted_per_process(threads, settings.WEB_THREADS)
    assert rules.refusal == passwords.HashingBusyError().detail
