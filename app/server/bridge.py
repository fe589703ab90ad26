"""The bridge between granian's ASGI and our WSGI app: whole bodies first, then a thread.

granian's WSGI interface hands the body to the app as it arrives: a stalled upload holds
an app thread (150 s in a test, no timeout exists), and a chunked body cut before its last
chunk reads as a plain, complete-looking end of file. So the bridge receives the whole body
on the event loop first (in memory, spooled to disk past 1 MiB), with an idle timeout
between reads, and only then runs the app on a worker thread. A client that stalls costs no
thread; one that goes away before its body is whole never reaches the app, so nothing of it
is written. a2wsgi does this translation but reads the body from the app's thread, and cost
3x a WSGI call on a trivial view (4.0k against 12.5k requests/s); this bridge, one thread
hop per request, ran 10.4k, ahead of gunicorn gthread's 6.5-8.8k. ``/healthz`` is answered
on the event loop: liveness must not queue behind app threads that wait for a lock or a
slow database (30 such requests once held it 15 s).
"""

import asyncio
import contextvars
import io
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, Any

from app.config import Settings
from app.errors import RETRY_AFTER_SECONDS
from app.server.access import Outcome, log_exchange
from app.server.answers import send_problem, send_whole, whole_headers
from app.server.environ import asgi_headers, wsgi_environ
from app.server.loops import AppThreads
from app.server.streaming import Stream, stream_out
from app.server.turns import NoTurnError, TurnRules, Turns
from app.server.types import BodyLimit, Receive, Scope, Send, WSGIApp
from app.telemetry.request_ids import request_id_from

log = logging.getLogger(__name__)


SPOOL_IN_MEMORY = 1 << 20  # a body past this goes to a temporary file
FIRST_CHUNKS = 64 << 10  # sent from the app's one thread hop; the rest is streamed
_NO_BODY = b""
_FAILED = "The server failed to complete the request."
# A body up to this size is read before the app judges its request: 64 KiB in memory
# costs nothing, and the common small JSON write keeps its one thread hop.
SMALL_BODY = 64 << 10


@dataclass(frozen=True)
class _Response:
    """What the app answered: status, headers, the first chunks, and any rest to stream."""

    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    stream: "Stream | None"


class _BodyError(Exception):
    """The request body cannot be handed to the app: answered here, with this status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class WSGIBridge:
    """An ASGI app that runs a WSGI app on a thread pool once each request's body is whole."""

    def __init__(
        self,
        app: WSGIApp,
        settings: Settings,
        admit: BodyLimit | None = None,
        turns: TurnRules | None = None,
    ) -> None:
        self._app = app
        # The app's answer to "may this request send a body, and how large?", asked before
        # a large body is read (app.web.admission); without it, MAX_UPLOAD_BYTES for all.
        self._admit = admit
        # The requests that wait for a place before a thread (sign-ins; app.server.turns),
        # served on threads of their own, one a place. A sign-in holds its thread while its
        # hash runs at idle priority, that is for as long as other requests keep the CPUs
        # busy: on the app's threads a flood held 2 of a process's 4, and the reads' p99
        # beside it was 1.6-1.9 times its p99 alone even with each hash a 21 ms sleep (no
        # CPU; python -m bench.sign_in --flood, docs/explanation/benchmarks.md). They share
        # the database pools, uncounted in a pool's least (app.config.ceiling): each holds a
        # connection for its account's lookup and its session's insert, never while it hashes.
        self._turns = (Turns(turns), AppThreads(turns.places, "turns")) if turns else None
        self._threads = AppThreads(settings.WEB_THREADS, "wsgi")
        self._thread_count = settings.WEB_THREADS
        self._idle = settings.BODY_IDLE_TIMEOUT
        self._stream_idle = settings.STREAM_IDLE_TIMEOUT
        self._min_rate = settings.BODY_MIN_RATE
        self._client_max = settings.CLIENT_MAX_REQUESTS
        self._in_flight: Counter[str] = Counter()  # by client address, in this process
        self._max_body = settings.MAX_UPLOAD_BYTES
        self._port = str(settings.PORT)
        self._started = 0  # app calls begun and ended: /healthz tells a stuck pool
        self._ended = 0
        self._last_end = time.monotonic()
        self._stuck_after = settings.STUCK_AFTER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # granian stopped accepting and waited for the requests in flight.
                await asyncio.get_running_loop().run_in_executor(None, self._shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        headers = asgi_headers(scope)
        request_id = request_id_from(headers.get("x-request-id", ""))
        if scope["path"] == "/healthz" and scope["method"] in {"GET", "HEAD"}:
            status, sent = await self._health(send, request_id)
            log_exchange(scope, started, Outcome(status, sent, request_id))
            return
        client = str((scope.get("client") or ("-",))[0])
        if self._in_flight[client] >= self._client_max:
            # Before its body: one address's slow or stalled requests cannot take every
            # connection of the process (1,100 bodies dripping a byte every 6 s once did).
            status = HTTPStatus.TOO_MANY_REQUESTS
            detail = (
                f"Too many requests in flight from this address (CLIENT_MAX_REQUESTS, "
                f"{self._client_max}); try again in {RETRY_AFTER_SECONDS} s."
            )
            sent = await send_problem(send, status, detail, request_id, RETRY_AFTER_SECONDS)
            log_exchange(scope, started, Outcome(status, sent, request_id))
            return
        self._in_flight[client] += 1
        try:
            await self._serve(scope, receive, send, headers, (started, request_id))
        finally:
            self._in_flight[client] -= 1
            if not self._in_flight[client]:
                del self._in_flight[client]

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        begun: tuple[float, str],
    ) -> None:
        started, request_id = begun
        context = contextvars.copy_context()
        limit = await self._admission(scope, headers, request_id, context)
        try:
            if limit is None:
                body: IO[bytes] = io.BytesIO()  # answered without it, the connection closed
                length = 0
            else:
                body, length = await self._body(headers, receive, limit)
        except _BodyError as problem:
            log.warning("request %s not served: %s", request_id, problem.detail)
            sent = await send_problem(send, problem.status, problem.detail, request_id)
            log_exchange(scope, started, Outcome(problem.status, sent, request_id))
            return
        environ = wsgi_environ(scope, headers, (body, length), request_id, self._port)
        try:
            response = await self._app_answer(scope, environ, context)
        except NoTurnError as refused:
            # No place came for a sign-in: refused from the loop, no thread taken.
            status = HTTPStatus.SERVICE_UNAVAILABLE
            detail = refused.detail
            sent = await send_problem(send, status, detail, request_id, RETRY_AFTER_SECONDS)
            log_exchange(scope, started, Outcome(status, sent, request_id))
            return
        except Exception:
            # Past the app's own handlers (its first chunks fail, say): still a problem+json
            # with the request id, not the ASGI server's text/plain page and bare traceback.
            log.exception("request %s failed before its answer began", request_id)
            status, detail = HTTPStatus.INTERNAL_SERVER_ERROR, _FAILED
            sent = await send_problem(send, status, detail, request_id)
            log_exchange(scope, started, Outcome(status, sent, request_id))
            return
        finally:
            body.close()
        try:
            sent = await self._respond(send, receive, response, close=limit is None)
        except ConnectionError as cut:
            # Raised on to granian, which drops the connection without the last chunk (a
            # cut stream, never a complete-looking one) and logs it as well.
            log.warning("request %s: %s", request_id, cut)
            log_exchange(scope, started, Outcome(response.status, 0, request_id))
            raise
        request_id = _header(response.headers, request_id)
        key = str(environ.get("app.api_key", "-"))
        log_exchange(scope, started, Outcome(response.status, sent, request_id, key))

    async def _app_answer(
        self, scope: Scope, environ: dict[str, Any], context: contextvars.Context
    ) -> _Response:
        if self._turns is not None and self._turns[0].applies(scope["method"], scope["path"]):
            turns, threads = self._turns
            # It waits for its place here, its body already whole (a slow body never holds
            # one), then runs on the place's own thread.
            async with turns.turn():
                return await threads.run(context.run, self._call, environ, context)
        # Counted for /healthz: the app's threads all busy and none ending is "stuck".
        self._started += 1
        try:
            return await self._threads.run(context.run, self._call, environ, context)
        finally:
            self._ended += 1
            self._last_end = time.monotonic()

    def _shutdown(self) -> None:
        self._threads.shutdown()
        if self._turns is not None:
            self._turns[1].shutdown()

    async def _health(self, send: Send, request_id: str) -> tuple[int, int]:
        # Stuck: every thread is busy and none has finished for long (a deadlock, a hang);
        # a long import alone keeps one thread, not all of them.
        saturated = self._started - self._ended >= self._thread_count
        stuck = saturated and time.monotonic() - self._last_end > self._stuck_after
        status = HTTPStatus.SERVICE_UNAVAILABLE if stuck else HTTPStatus.OK
        payload = b'{"status":"stuck"}' if stuck else b'{"status":"ok"}'
        headers = whole_headers(payload, "application/json", request_id)
        if stuck:
            headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
        await send_whole(send, status, payload, headers)
        return int(status), len(payload)

    async def _admission(
        self, scope: Scope, headers: dict[str, str], request_id: str, context: contextvars.Context
    ) -> int | None:
        # The bytes the body may have, or None: no body may be sent, none is read. A body
        # that fits in SMALL_BODY is read first and judged with its request (no disk, no
        # thread hop more); a larger or chunked one waits for the app's word.
        declared = headers.get("content-length", "0")
        large = not declared.isdigit() or int(declared) > SMALL_BODY
        if self._admit is None or not (large or "transfer-encoding" in headers):
            return self._max_body
        probe = wsgi_environ(scope, headers, (io.BytesIO(), 0), request_id, self._port)
        limit = await self._threads.run(context.run, self._admit, probe)
        return None if limit is None else min(limit, self._max_body)

    async def _body(
        self, headers: dict[str, str], receive: Receive, limit: int
    ) -> tuple[IO[bytes], int]:
        declared_text = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if declared_text is None and not chunked:
            return io.BytesIO(), 0
        body: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        declared = int(declared_text) if declared_text and declared_text.isdigit() else None
        if declared is not None and declared > limit:
            body.close()
            raise _BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large(limit))
        received = 0
        # Past its first BODY_IDLE_TIMEOUT seconds, a body must keep up BODY_MIN_RATE: a
        # byte every few seconds never trips the gap timer alone.
        due = time.monotonic() + self._idle
        try:
            while True:
                now = time.monotonic()
                wait = min(self._idle, max(0.0, due + received / self._min_rate - now))
                try:
                    message = await asyncio.wait_for(receive(), wait)
                except TimeoutError:
                    raise self._too_slow(received, wait < self._idle) from None
                if message["type"] == "http.disconnect":
                    raise _BodyError(
                        HTTPStatus.BAD_REQUEST,
                        f"The client went away after {received:,} bytes of the body; "
                        "nothing of it was kept.",
                    )
                chunk = message.get("body", _NO_BODY)
                received += len(chunk)
                if received > limit:
                    raise _BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large(limit))
                body.write(chunk)
                if not message.get("more_body", False):
                    break
        except BaseException:
            body.close()
            raise
        if declared is not None and received != declared:
            body.close()
            raise _BodyError(
                HTTPStatus.BAD_REQUEST,
                f"The body ended after {received:,} of {declared:,} bytes; nothing was kept.",
            )
        body.seek(0)
        return body, received

    def _too_slow(self, received: int, below_rate: bool) -> _BodyError:
        if below_rate:
            how = f"it arrived slower than {self._min_rate:,} bytes/s (BODY_MIN_RATE)"
        else:
            how = f"nothing arrived for {self._idle:g} s"
        return _BodyError(
            HTTPStatus.REQUEST_TIMEOUT,
            f"The body stalled: {how} after {received:,} bytes; nothing of it was kept.",
        )

    def _call(self, environ: dict[str, Any], context: contextvars.Context) -> _Response:
        # On a worker thread, in the request's own context (kept for the streamed chunks).
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], _exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [int(status.split(" ", 1)[0]), headers]
            return _no_write

        iterable = self._app(environ, start_response)
        iterator = iter(iterable)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in iterator:
                chunks.append(chunk)
                size += len(chunk)
                if size >= FIRST_CHUNKS:
                    # Produced while the client reads: one hop per chunk, no thread held.
                    rest = _rest(iterator, iterable)
                    stream = Stream(rest, context, self._threads)
                    return _Response(started[0], started[1], chunks, stream)
        except BaseException:
            _close(iterable)
            raise
        _close(iterable)
        return _Response(started[0], started[1], chunks, None)

    async def _respond(
        self, send: Send, receive: Receive, response: _Response, *, close: bool = False
    ) -> int:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if close:
            # A body left unread makes the connection unusable for another request.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        body = b"".join(response.chunks)
        stream = response.stream
        if stream is None:
            await send({"type": "http.response.body", "body": body})
            return len(body)
        # Whatever fails here (the app mid-stream, a client gone, a reader stalled) ends
        # the stream: the server then drops the connection without the last chunk, so a
        # client sees a cut stream, never a complete-looking one.
        return await stream_out(send, receive, body, stream, self._stream_idle)


def _rest(iterator: Iterator[bytes], iterable: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from iterator
    finally:
        _close(iterable)


def _close(iterable: Iterable[bytes]) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        close()


def _no_write(_data: bytes) -> None:
    msg = "write() is not supported: return the body as an iterable"
    raise NotImplementedError(msg)


def _too_large(limit: int) -> str:
    return f"The body is larger than this endpoint takes ({limit:,} bytes); nothing was kept."


def _header(headers: list[tuple[str, str]], default: str) -> str:
    return next((v for k, v in headers if k.lower() == "x-request-id"), default)
