"""The production server's bridge: whole bodies only, liveness on the loop, one context."""

import asyncio
import contextvars
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from app.config import Settings
from app.server.bridge import WSGIBridge
from app.server.types import Message
from tests.helpers import Recorder, asgi_body, asgi_scope, asgi_status, serve_asgi

SETTINGS = Settings(WEB_THREADS=2, BODY_IDLE_TIMEOUT=0.2, STUCK_AFTER=0.2)


def test_paths_reach_the_app_as_wsgi_wants_them() -> None:
    seen: list[str] = []

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(environ["PATH_INFO"])
        start("200 OK", [])
        return [b""]

    bridge = WSGIBridge(app, SETTINGS)
    for raw in (b"/users/%C3%AEl", b"/users/%F2%8E%9A%8F%21", b"/a%2Fb"):
        scope = {**asgi_scope("GET", raw.decode()), "raw_path": raw}
        asyncio.run(serve_asgi(bridge, scope, []))
    assert seen == [
        "/users/\xc3\xael",  # the UTF-8 bytes of "îl", one latin-1 character each
        "/users/\xf2\x8e\x9a\x8f!",
        "/a/b",
    ]


def test_whole_bodies_reach_the_app() -> None:
    app = Recorder()
    bridge = WSGIBridge(app, SETTINGS)
    messages: list[Message] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ]
    sent = asyncio.run(serve_asgi(bridge, asgi_scope(headers={"content-length": "4"}), messages))
    assert asgi_status(sent) == 200
    assert app.calls == [b"abcd"]


@pytest.mark.parametrize("headers", [{"content-length": "100"}, {"transfer-encoding": "chunked"}])
def test_a_client_gone_mid_body_never_reaches_the_app(headers: dict[str, str]) -> None:
    app = Recorder()
    bridge = WSGIBridge(app, SETTINGS)
    messages: list[Message] = [{"type": "http.request", "body": b"ab", "more_body": True}]
    sent = asyncio.run(serve_asgi(bridge, asgi_scope(headers=headers), messages))
    assert asgi_status(sent) == 400
    assert app.calls == []


def test_a_body_shorter_than_its_length_never_reaches_the_app() -> None:
    app = Recorder()
    bridge = WSGIBridge(app, SETTINGS)
    messages: list[Message] = [{"type": "http.request", "body": b"ab", "more_body": False}]
    sent = asyncio.run(serve_asgi(bridge, asgi_scope(headers={"content-length": "100"}), messages))
    assert asgi_status(sent) == 400
    assert b"2 of 100 bytes" in asgi_body(sent)
    assert app.calls == []


def test_a_stalled_body_is_a_408_after_the_idle_timeout() -> None:
    app = Recorder()
    bridge = WSGIBridge(app, SETTINGS)
    messages: list[Message] = [{"type": "http.request", "body": b"ab", "more_body": True}]
    sent = asyncio.run(
        serve_asgi(bridge, asgi_scope(headers={"content-length": "100"}), messages, True)
    )
    assert asgi_status(sent) == 408
    assert json.loads(asgi_body(sent))["status"] == 408
    assert app.calls == []


def test_healthz_answers_on_the_loop_and_says_stuck_when_every_thread_hangs() -> None:
    gate = threading.Event()
    bridge = WSGIBridge(Recorder(gate=gate), SETTINGS)

    async def scenario() -> tuple[list[Message], list[Message], list[Message]]:
        get = asgi_scope("GET", "/users")
        held = [asyncio.create_task(serve_asgi(bridge, get, [])) for _ in range(2)]
        await asyncio.sleep(0.05)
        busy = await serve_asgi(bridge, asgi_scope("GET", "/healthz"), [])
        await asyncio.sleep(0.3)  # past STUCK_AFTER with both threads held
        stuck = await serve_asgi(bridge, asgi_scope("GET", "/healthz"), [])
        gate.set()
        await asyncio.gather(*held)
        return busy, stuck, await serve_asgi(bridge, asgi_scope("GET", "/healthz"), [])

    busy, stuck, after = asyncio.run(scenario())
    assert asgi_status(busy) == 200  # answered although both app threads are taken
    assert asgi_status(stuck) == 503
    assert (b"retry-after", b"1") in stuck[0]["headers"]
    assert asgi_status(after) == 200


def test_a_streamed_body_runs_every_chunk_in_the_request_context() -> None:
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker")
    seen: list[str] = []

    def chunks() -> Iterator[bytes]:
        token = marker.set("request")
        try:
            for _ in range(40):
                seen.append(marker.get())
                yield b"x" * 4096  # past the first 64 KiB: the rest goes one hop a chunk
        finally:
            marker.reset(token)  # refused in any other context than the one it was set in

    bridge = WSGIBridge(Recorder(body=chunks()), SETTINGS)
    sent = asyncio.run(serve_asgi(bridge, asgi_scope("GET", "/users/export"), []))
    assert len(asgi_body(sent)) == 40 * 4096
    assert sent[-1].get("more_body", False) is False
    assert seen == ["request"] * 40
