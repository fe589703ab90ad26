"""Connection floods against a server on loopback, from one address, while another client
(another loopback address) times /healthz and an authenticated GET: bounded in count and
time, every socket ours and closed at the end."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

ATTACKER = "127.0.0.1"
PROBE = "127.0.0.2"  # another client: loopback's whole 127/8 answers on Linux


@dataclass
class Flood:
    """What a flood did: connections opened, closed by the server, and the probes' times."""

    opened: int = 0
    refused: int = 0
    closed_by_server: int = 0
    probe_seconds: list[float] = field(default_factory=list)
    probe_failures: list[str] = field(default_factory=list)

    def slowest(self) -> float:
        """The slowest probe, in seconds (inf if none answered)."""
        return max(self.probe_seconds, default=float("inf"))


Attack = Callable[[asyncio.StreamReader, asyncio.StreamWriter, float], Awaitable[None]]


async def silent(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter, _: float) -> None:
    """Send nothing at all (held open by the caller until the end)."""


async def slow_headers(
    _reader: asyncio.StreamReader, writer: asyncio.StreamWriter, until: float
) -> None:
    """Send a request line, then a header byte every 2 s, never ending the headers."""
    writer.write(b"GET /users HTTP/1.1\r\nHost: x\r\n")
    while time.monotonic() < until:
        await asyncio.sleep(2)
        writer.write(b"X")
        await writer.drain()


async def dripping_body(
    _reader: asyncio.StreamReader, writer: asyncio.StreamWriter, until: float
) -> None:
    """Declare an 8-byte JSON body and send it a byte every 6 s."""
    writer.write(
        b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 8\r\n\r\n"
    )
    await writer.drain()
    for byte in b'{"a": 1}':
        if time.monotonic() >= until:
            return
        await asyncio.sleep(6)
        writer.write(bytes([byte]))
        await writer.drain()


async def _held(
    attack: Attack, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, until: float
) -> None:
    # The attack, then the connection held open until the end: only the server closes it.
    await attack(reader, writer, until)
    await asyncio.sleep(max(0.0, until - time.monotonic()))


async def _attacker(port: int, attack: Attack, until: float, flood: Flood) -> None:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACKER, 0)), 5
        )
    except (OSError, TimeoutError):
        flood.refused += 1
        return
    flood.opened += 1
    try:
        held = asyncio.ensure_future(_held(attack, reader, writer, until))
        closed = asyncio.ensure_future(reader.read())  # b"" or a response then EOF
        done, _ = await asyncio.wait(
            {held, closed},
            timeout=max(0.0, until - time.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if closed in done or (held in done and held.exception() is not None):
            flood.closed_by_server += 1
        for task in (held, closed):
            task.cancel()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _probe(port: int, token: str, until: float, flood: Flood) -> None:
    while time.monotonic() < until:
        for path, headers in (
            ("/healthz", b""),
            ("/users?limit=1", b"Authorization: Bearer " + token.encode() + b"\r\n"),
        ):
            started = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, local_addr=(PROBE, 0)), 5
                )
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
                    + headers
                    + b"\r\n"
                )
                status = await asyncio.wait_for(reader.readline(), 5)
                writer.close()
                if b" 200 " not in status:
                    flood.probe_failures.append(f"{path}: {status!r}")
            except (OSError, TimeoutError) as exc:
                flood.probe_failures.append(f"{path}: {type(exc).__name__}")
            flood.probe_seconds.append(time.monotonic() - started)
        await asyncio.sleep(0.25)


async def flood(
    port: int, token: str, attacks: dict[Attack, int], seconds: float, ramp: float = 2.0
) -> Flood:
    """Open ``attacks`` (kind: count) connections over ``ramp`` seconds and hold them up to
    ``seconds`` while probing from another address; return what happened."""
    result = Flood()
    until = time.monotonic() + seconds
    total = sum(attacks.values())
    tasks = [asyncio.ensure_future(_probe(port, token, until, result))]
    started = 0
    for attack, count in attacks.items():
        for _ in range(count):
            tasks.append(asyncio.ensure_future(_attacker(port, attack, until, result)))
            started += 1
            if started % 100 == 0:
                await asyncio.sleep(ramp * 100 / total)
    await asyncio.gather(*tasks)
    return result
