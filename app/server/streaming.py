"""Streamed responses: each chunk the app produces is one hop to an app thread, in the
request's own context, and the stream ends as soon as nobody is reading it."""

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator

from app.server.loops import AppThreads
from app.server.types import Receive, Send

_END = b""


class Stream:
    """A response body the app is still producing: one thread hop per chunk, same context."""

    def __init__(
        self, iterator: Iterator[bytes], context: contextvars.Context, threads: AppThreads
    ) -> None:
        # The very context the app ran in: generators that pushed Flask's context inside it
        # reset their variables in it later, which a copy would refuse.
        self.iterator = iterator
        self.context = context
        self.threads = threads

    def next_chunk(self) -> bytes | None:
        """Return the next non-empty chunk, or None at the end (runs in the app's context)."""
        for chunk in self.iterator:
            if chunk:
                return chunk
        return None

    def close(self) -> None:
        """Close the app's iterable (its teardown runs: the session, the transaction)."""
        close = getattr(self.iterator, "close", None)
        if close is not None:
            close()


async def _gone(receive: Receive) -> None:
    # The ASGI server says a client went away by http.disconnect on receive; sending to it
    # may well go on without an error, the app producing for nobody (20 exports closed
    # after 1 KB once cost 33 CPU-seconds between them).
    while (await receive())["type"] != "http.disconnect":
        pass


async def stream_out(
    send: Send,
    receive: Receive,
    first: bytes,
    stream: Stream,
    idle: float,
) -> int:
    """Send ``first`` and the rest of ``stream``; return the bytes sent. The stream ends
    (closed in its context: the app's transaction ends with it) when the app is done, when
    the client goes away, or when a chunk cannot be handed over for ``idle`` seconds (a
    reader that stopped reading holds no connection and no transaction beyond that)."""
    watcher = asyncio.ensure_future(_gone(receive))
    sent = 0
    try:
        chunk: bytes | None = first
        while chunk is not None:
            handing = asyncio.ensure_future(
                send({"type": "http.response.body", "body": chunk, "more_body": True})
            )
            done, _ = await asyncio.wait(
                {handing, watcher}, timeout=idle, return_when=asyncio.FIRST_COMPLETED
            )
            if handing not in done:
                handing.cancel()
                why = "went away" if watcher in done else f"read nothing for {idle:g} s"
                raise ConnectionError(f"the stream was cut after {sent:,} bytes: the client {why}")
            handing.result()
            sent += len(chunk)
            chunk = await stream.threads.run(stream.context.run, stream.next_chunk)
        await send({"type": "http.response.body", "body": _END})
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await stream.threads.run(stream.context.run, stream.close)
    return sent
