"""A real webhook receiver on loopback for the tests, the fault suite and the benchmarks.

Each path behaves its own way (``Receiver.routes``): answer a status, fail the first tries
of each message, redirect, stall. Every request is kept (path, headers, body) in arrival
order, so a test checks signatures, ids and order from what was actually received.
"""

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # when it arrived (the epoch, in seconds)

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header."""
        return self.headers["webhook-id"]

    @property
    def payload(self) -> Any:
        """The JSON body."""
        return json.loads(self.body)


# A route: given the request and how many with its webhook-id came before on this path,
# (status, extra headers, body).
Route = Callable[[Received, int], tuple[int, dict[str, str], bytes]]


def answer(status: int) -> Route:
    """Always this status."""
    return lambda _request, _before: (status, {}, b"")


def fail_first(times: int, status: int = 500) -> Route:
    """``status`` to the first ``times`` tries of each message, then 200."""
    return lambda _request, before: (status if before < times else 200, {}, b"")


def held(gate: threading.Event, seconds: float = 60) -> Route:
    """200, once ``gate`` is set (the request is held until then, at most ``seconds``)."""

    def route(_request: Received, _before: int) -> tuple[int, dict[str, str], bytes]:
        gate.wait(seconds)
        return 200, {}, b""

    return route


class Receiver:
    """A threaded HTTP server on 127.0.0.1 recording what it is sent."""

    def __init__(self, port: int = 0) -> None:
        self.routes: dict[str, Route] = {"/ok": answer(200)}
        self.received: list[Received] = []
        self.tries: Counter[tuple[str, str]] = Counter()  # requests by (path, webhook-id)
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends every stall (at teardown)
        self.stall_seconds = 60.0
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def url(self, path: str) -> str:
        """The URL of one of its paths."""
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        """What was received on ``path``, in order."""
        with self.lock:
            return [r for r in self.received if r.path == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                headers = {k.lower(): v for k, v in self.headers.items()}
                got = Received(self.path, headers, self.rfile.read(length))
                key = (got.path, headers.get("webhook-id", ""))
                with receiver.lock:
                    before = receiver.tries[key]
                    receiver.tries[key] += 1
                    receiver.received.append(got)
                if self.path == "/stall":
                    receiver.release.wait(receiver.stall_seconds)
                    return
                route = receiver.routes.get(self.path, answer(404))
                status, extra, body = route(got, before)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextmanager
def receiving(port: int = 0) -> Iterator[Receiver]:
    """A receiver serving (on ``port``, or any free one) until the block ends."""
    receiver = Receiver(port)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join(timeout=10)
