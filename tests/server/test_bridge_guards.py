"""The bridge's guards against clients that hold a process: a body's minimum rate, a budget
of requests in flight per address, repeated headers kept visible, secrets out of the log."""

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from app.config import Settings
from app.server.access import access_log, redact
from app.server.bridge import WSGIBridge
from app.server.types import Message
from tests.helpers import Recorder, asgi_scope, asgi_status, serve_asgi

SETTINGS = Settings(WEB_THREADS=2, BODY_IDLE_TIMEOUT=0.3, BODY_MIN_RATE=100, CLIENT_MAX_REQUESTS=3)


async def _drip(bridge: WSGIBridge, every: float, size: int) -> tuple[list[Message], float]:
    sent: list[Message] = []
    pieces = [{"type": "http.request", "body": b"x", "more_body": True}] * (size - 1)
    pieces.append({"type": "http.request", "body": b"x", "more_body": False})
    incoming = iter(pieces)

    async def receive() -> Message:
        await asyncio.sleep(every)
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    started = time.monotonic()
    await bridge(asgi_scope(headers={"content-length": str(size)}), receive, send)
    return sent, time.monotonic() - started


def test_a_body_dripping_within_the_gap_timer_is_cut_by_the_minimum_rate() -> None:
    # A byte every 0.2 s never trips the 0.3 s gap timer; 100 bytes/s after 0.3 s does.
    app = Recorder()
    sent, took = asyncio.run(_drip(WSGIBridge(app, SETTINGS), every=0.2, size=50))
    assert asgi_status(sent) == 408
    assert "slower than 100 bytes/s" in json.loads(sent[1]["body"])["detail"]
    assert took < 1.5
    assert app.calls == []


def test_a_body_arriving_fast_enough_is_whole() -> None:
    app = Recorder()
    sent, _ = asyncio.run(_drip(WSGIBridge(app, SETTINGS), every=0.001, size=50))
    assert asgi_status(sent) == 200
    assert app.calls == [b"x" * 50]


def test_an_address_past_its_requests_in_flight_gets_a_429_before_its_body() -> None:
    bridge = WSGIBridge(Recorder(), SETTINGS)

    async def flood() -> list[int]:
        stalled = [
            asyncio.ensure_future(
                serve_asgi(bridge, asgi_scope(headers={"content-length": "5"}), [], stall=True)
            )
            for _ in range(SETTINGS.CLIENT_MAX_REQUESTS)
        ]
        await asyncio.sleep(0.05)
        refused = await serve_asgi(bridge, asgi_scope(headers={"content-length": "5"}), [])
        other = asgi_scope(method="GET")
        other["client"] = ("127.0.0.2", 5000)
        served = await serve_asgi(bridge, other, [])
        for task in stalled:
            task.cancel()
        statuses = [asgi_status(refused), asgi_status(served)]
        assert (b"retry-after", b"1") in refused[0]["headers"]
        assert (b"connection", b"close") in refused[0]["headers"]
        return statuses

    assert asyncio.run(flood()) == [429, 200]


def test_a_header_sent_twice_reaches_the_app_as_one_joined_field() -> None:
    seen: list[str] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        seen.append(environ["HTTP_AUTHORIZATION"])
        start("200 OK", [])
        return [b""]

    scope = asgi_scope(method="GET")
    scope["headers"] = [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")]
    asyncio.run(serve_asgi(WSGIBridge(app, SETTINGS), scope, []))
    assert seen == ["Bearer a, Bearer b"]


@pytest.mark.parametrize(
    ("raw", "kept", "gone"),
    [
        ("api_key=umk_abcdefghijklmnopqrst&limit=5", "limit=5", "abcdefghijklmnopqrst"),
        ("limit=5&access_token=s3cr3t", "limit=5", "s3cr3t"),
        ("password=hunter2", "password=", "hunter2"),
        ("q=umk_ABCDEFGHIJKLMNOPQRST12", "q=umk_", "ABCDEFGHIJKLMNOPQRST12"),
    ],
)
def test_secrets_in_the_query_string_never_reach_the_access_log(
    raw: str,
    kept: str,
    gone: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scope = asgi_scope(method="GET", path="/users/umk_ZYXWVUTSRQPONMLKJIHG")
    scope["query_string"] = raw.encode()
    monkeypatch.setattr(access_log, "propagate", True)
    with caplog.at_level(logging.INFO, logger=access_log.name):
        asyncio.run(serve_asgi(WSGIBridge(Recorder(), SETTINGS), scope, []))
    entry = json.loads(caplog.records[-1].getMessage())
    assert kept in entry["query"]
    assert gone not in entry["query"]
    assert "ZYXWVUTSRQPONMLKJIHG" not in entry["path"]
    assert redact("/users/42?sort=created_at") == "/users/42?sort=created_at"
