"""The production server's bridge: whole bodies only, liveness on the loop, one context."""

import asyncio
import contextvars
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from app.config import Settings
from app.server.bridge import Message, WSGIBridge

SETTINGS = Settings(WEB_THREADS=2, BODY_IDLE_TIMEOUT=0.2, STUCK_AFTER=0.2)


def _scope(
    method: str = "POST", path: str = "/users", headers: dict[str, str] | None = None
) -> Any:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


class Recorder:
    """A WSGI app that records what it was called with."""

    def __init__(self, body: Iterable[bytes] = (b"ok",), gate: threading.Event | None = None):
        self.calls: list[bytes] = []
        self._body = body
        self._gate = gate

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if self._gate is not None:
            self._gate.wait(10)
        self.calls.append(environ["wsgi.input"].read())
        start("200 OK", [("Content-Type", "text/plain")])
        return self._body


async def _serve(
    bridge: WSGIBridge, scope: Any, messages: list[Message], stall: bool = False
) -> list[Message]:
    sent: list[Message] = []
    incoming = iter(messages)

    async def receive() -> Message:
        try:
            return next(incoming)
        except StopIteration:
            if stall:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await bridge(scope, receive, send)
    return sent


def _status(sent: list[Message]) -> int:
    return int(sent[0]["status"])


def _body(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent[1:])


def test_paths_reach_the_app_as_wsgi_wants_them() -> None:
    seen: list[str] = []

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(environ["PATH_INFO"])
        start("200 OK", [])
        return [b""]

    bridge = WSGIBridge(app, SETTINGS)
    for raw in (b"/users/%C3%AEl", b"/users/%F2%8E%9A%8F%21", b"/a%2Fb"):
        scope = {**_scope("GET", raw.decode()), "raw_path": raw}
        asyncio.run(_serve(bridge, scope, []))
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
    sent = asyncio.run(_serve(bridge, _scope(headers={"content-length": "4"}), messages))
    assert _status(sent) == 200
    assert app.calls == [b"abcd"]


@pytest.mark.parametrize("headers", [{"content-length": "100"}, {"transfer-encoding": "chunked"}])
def test_a_client_gone_mid_body_never_reaches_the_app(headers: dict[str, str]) -> None:
    app = Recorder()
    bridge = WSGIBridge(app, SETTINGS)
    messages: list[Message] = [{"type": "http.request", "body": b"ab", "more_body": True}]
    sent = asyncio.run(_serve(bridge, _scope(headers=headers), messages))
    assert _status(sent) == 400
    assert app.calls == []


def test_a_body_shorter_than_its_length_never_reaches_the_app() -> None:
    app = Recorder()
    bridge = WSGIBridge(app, SETTINGS)
    messages: list[Message] = [{"type": "http.request", "body": b"ab", "more_body": False}]
    sent = asyncio.run(_serve(bridge, _scope(headers={"content-length": "100"}), messages))
    assert _status(sent) == 400
    assert b"2 of 100 bytes" in _body(sent)
    assert app.calls == []


def test_a_stalled_body_is_a_408_after_the_idle_timeout() -> None:
    app = Recorder()
    bridge = WSGIBridge(app, SETTINGS)
    messages: list[Message] = [{"type": "http.request", "body": b"ab", "more_body": True}]
    sent = asyncio.run(_serve(bridge, _scope(headers={"content-length": "100"}), messages, True))
    assert _status(sent) == 408
    assert json.loads(_body(sent))["status"] == 408
    assert app.calls == []


def test_healthz_answers_on_the_loop_and_says_stuck_when_every_thread_hangs() -> None:
    gate = threading.Event()
    bridge = WSGIBridge(Recorder(gate=gate), SETTINGS)

    async def scenario() -> tuple[list[Message], list[Message], list[Message]]:
        get = _scope("GET", "/users")
        held = [asyncio.create_task(_serve(bridge, get, [])) for _ in range(2)]
        await asyncio.sleep(0.05)
        busy = await _serve(bridge, _scope("GET", "/healthz"), [])
        await asyncio.sleep(0.3)  # past STUCK_AFTER with both threads held
        stuck = await _serve(bridge, _scope("GET", "/healthz"), [])
        gate.set()
        await asyncio.gather(*held)
        return busy, stuck, await _serve(bridge, _scope("GET", "/healthz"), [])

    busy, stuck, after = asyncio.run(scenario())
    assert _status(busy) == 200  # answered although both app threads are taken
    assert _status(stuck) == 503
    assert (b"retry-after", b"1") in stuck[0]["headers"]
    assert _status(after) == 200


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
    sent = asyncio.run(_serve(bridge, _scope("GET", "/users/export"), []))
    assert len(_body(sent)) == 40 * 4096
    assert sent[-1].get("more_body", False) is False
    assert seen == ["request"] * 40
