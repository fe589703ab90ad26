"""The worker's webhook duty: deliveries claimed from the outbox and sent, signed per
Standard Webhooks, by an ``httpx.AsyncClient`` on one long-lived event loop.

**One loop for the process's life** (app/server/loops.py's ``BackgroundLoop``, the house
design of docs/explanation/async.md): the clients and their kept-alive connections outlive
every delivery. Database work never runs on the loop: each call goes to a thread
(``asyncio.to_thread``) with a connection of its own from the engine's pool, and no
transaction is open while a request is in flight: the outbox's lease stands for it.

**Bounded.** At most ``WEBHOOK_CONCURRENCY`` deliveries in flight in all (a claim asks for
the free slots only) and ``WEBHOOK_CONCURRENCY_PER_ENDPOINT`` to one endpoint (a semaphore
each); each attempt, name lookup included, ends within ``WEBHOOK_TIMEOUT``, so a receiver
that stalls holds a slot no longer. A lease outlasts the longest wait a claimed delivery
can have (its endpoint's queue, then its attempt), so no live worker's delivery is claimed
again by another.

**Safe.** Before each attempt the URL's name is resolved again and every address checked
(app/services/webhook_urls.py); the request goes to a checked address (the URL carries the
IP, ``Host`` the name, and TLS the name as SNI and for the certificate), never to a second
resolution. Redirects are not followed (a 3xx is a failed attempt); the answer is read to
its first ``EXCERPT_MAX`` bytes, undecoded (no compression asked), then the connection is
dropped. No proxy from the environment: a proxy would resolve the name itself.

**In order per resource.** A delivery is claimed only when no earlier one of the same
resource to the same endpoint is waiting (app/services/webhook_delivery.py), so one of each
is in flight at a time, and a retry holds the later ones back.
"""

import asyncio
import ipaddress
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlunsplit

import httpx
from prometheus_client import Counter, Gauge
from sqlalchemy import Engine
from standardwebhooks import Webhook

from app.config import Settings
from app.db.failures import DATABASE_ERRORS, describe
from app.models.webhook import EXCERPT_MAX
from app.server.loops import BackgroundLoop
from app.services import webhook_delivery
from app.services.webhook_delivery import Claimed, Outcome, Policy
from app.services.webhook_urls import Address, UnsafeUrlError, parse, port_of, resolve_async
from app.worker.metrics import REGISTRY
from app.worker.outage import Outage

log = logging.getLogger("app.worker")

QUEUE = Gauge(
    "worker_webhook_deliveries_pending",
    "Webhook deliveries waiting to be sent (due, in flight or backing off).",
    registry=REGISTRY,
)
OLDEST = Gauge(
    "worker_webhook_oldest_pending_seconds",
    "Age of the oldest webhook delivery not sent yet (0: none).",
    registry=REGISTRY,
)
ATTEMPTS = Counter(
    "worker_webhook_attempts_total",
    "Webhook delivery attempts, by outcome (sent, retried, failed for good, disabled the "
    "endpoint).",
    ["outcome"],
    registry=REGISTRY,
)


def pinned_url(url: str, address: Address) -> str:
    """``url`` with its host replaced by ``address`` (the port, path and query kept)."""
    parts = parse(url)
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def signatures(delivery: Claimed, moment: datetime, body: bytes) -> str:
    """``webhook-signature``: ``v1,`` with the secret, and with the previous one while a
    rotation's overlap lasts, space-separated (Standard Webhooks)."""
    secrets = [delivery.secret]
    until = delivery.previous_secret_until
    if delivery.previous_secret and until is not None and until > moment:
        secrets.append(delivery.previous_secret)
    msg_id = str(delivery.event.id)
    return " ".join(Webhook(secret).sign(msg_id, moment, body) for secret in secrets)


class Deliveries:
    """The webhook duty: a sender on its own loop, and the queue's measures in the rounds."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.engine = engine
        self.allowed_hosts = settings.webhook_allowed_hosts
        self.concurrency = settings.WEBHOOK_CONCURRENCY
        self.per_endpoint = settings.WEBHOOK_CONCURRENCY_PER_ENDPOINT
        self.poll = settings.WEBHOOK_POLL_INTERVAL
        self.total = settings.WEBHOOK_TIMEOUT
        self.timeout = httpx.Timeout(
            connect=settings.WEBHOOK_CONNECT_TIMEOUT,
            read=settings.WEBHOOK_READ_TIMEOUT,
            write=settings.WEBHOOK_READ_TIMEOUT,
            pool=settings.WEBHOOK_TIMEOUT,
        )
        # The longest a claimed delivery waits: its endpoint's other claimed deliveries,
        # per_endpoint at a time, then its own attempt; and a margin of one more attempt.
        rounds = -(-self.concurrency // self.per_endpoint)
        self.lease = timedelta(seconds=self.total * (rounds + 1) + 5)
        self.policy = Policy(
            max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
            retry_base=settings.WEBHOOK_RETRY_BASE,
            retry_cap=settings.WEBHOOK_RETRY_CAP,
            disable_after=settings.WEBHOOK_DISABLE_AFTER,
        )
        self.loop = BackgroundLoop("webhooks")
        self.stopping = asyncio.Event()
        # Healthy while a claim reached the database lately (with every slot busy, the next
        # claim waits up to an attempt).
        self.claims = Outage(
            log,
            f"claiming webhook deliveries failed: %s; retrying every {self.poll}s",
            "claiming webhook deliveries succeeds again",
            grace=3 * self.poll + self.total + 5,
        )
        self.measures = Outage(log, "measuring the webhook queue failed: %s", None, grace=0)
        self._done: Any = None
        self._clients: dict[tuple[str, str, int], httpx.AsyncClient] = {}
        self._slots: defaultdict[int, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self.per_endpoint)
        )

    # The duty, called from the rounds thread.

    def start(self) -> None:
        """Start sending, on the loop's own thread."""
        # httpx logs every request at INFO: a line per delivery. The attempts table has them.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._done = self.loop.submit(self._run())

    def stop(self) -> None:
        """Claim no more; wait for the deliveries in flight (each ends within its timeout),
        then close the connections and the loop. What is still in flight past that is sent
        again once its lease runs out."""
        if self._done is None:
            return
        self.loop.loop.call_soon_threadsafe(self.stopping.set)
        try:
            self._done.result(timeout=self.total + 10)
        except Exception:
            log.warning("webhook deliveries did not end cleanly", exc_info=True)
        self.loop.stop(self._close_clients)
        self._done = None

    def healthy(self) -> bool:
        """A claim reached the database lately (all slots busy, it waits up to an attempt)."""
        return self.claims.healthy()

    def round(self) -> None:
        """Measure the queue: how many wait, and for how long the oldest has."""
        try:
            waiting, age = webhook_delivery.queue(self.engine)
        except DATABASE_ERRORS as error:
            self.measures.failed(error)
            return
        self.measures.succeeded()
        QUEUE.set(waiting)
        OLDEST.set(age)

    # On the loop.

    async def _run(self) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        # A claim is a transaction of three statements: made for a quarter of the slots at
        # least, unless a poll interval has passed, not once per delivery that ends.
        batch = max(1, self.concurrency // 4)
        last_claim = -self.poll
        while not self.stopping.is_set():
            free = self.concurrency - len(in_flight)
            claimed = []
            if free >= batch or (free > 0 and time.monotonic() - last_claim >= self.poll):
                claimed = await self._claim(free)
                last_claim = time.monotonic()
            for delivery in claimed:
                task = asyncio.create_task(self._deliver(delivery))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            # Every slot busy (after a full claim more may be due): look again as soon as
            # one frees. Else until the poll interval passes or a delivery ends (its
            # resource's next one may be due then).
            full = len(in_flight) >= self.concurrency
            await self._wait(in_flight, None if full else self.poll)
        if in_flight:
            await asyncio.wait(in_flight, timeout=self.total + 5)

    async def _wait(self, in_flight: set["asyncio.Task[None]"], at_most: float | None) -> None:
        # Until at_most seconds pass, a delivery ends, or a stop is asked.
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait(
                {stop, *in_flight}, timeout=at_most, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()

    async def _claim(self, limit: int) -> list[Claimed]:
        try:
            claimed = await asyncio.to_thread(
                webhook_delivery.claim, self.engine, limit=limit, lease=self.lease
            )
        except DATABASE_ERRORS as error:
            self.claims.failed(error)
            return []
        self.claims.succeeded()
        return claimed

    async def _deliver(self, delivery: Claimed) -> None:
        async with self._slots[delivery.endpoint_id]:
            outcome = await self.attempt(delivery)
        try:
            result = await asyncio.to_thread(
                webhook_delivery.settle, self.engine, delivery, outcome, self.policy
            )
        except DATABASE_ERRORS as error:
            # Its lease runs out and it is sent again (at least once).
            log.error("recording webhook delivery %s failed: %s", delivery.id, describe(error))
            return
        except Exception:
            log.exception("recording webhook delivery %s failed", delivery.id)
            return
        ATTEMPTS.labels(result).inc()
        if result == webhook_delivery.DISABLED:
            log.warning(
                "webhook endpoint %s disabled: %s", delivery.endpoint_id, outcome.describe()
            )

    async def attempt(self, delivery: Claimed) -> Outcome:
        """One attempt, whatever happens: its status and excerpt, or why there is none."""
        started = datetime.now(UTC)
        clock = time.monotonic()

        def outcome(**fields: Any) -> Outcome:
            elapsed = round((time.monotonic() - clock) * 1000)
            return Outcome(started_at=started, duration_ms=elapsed, **fields)

        try:
            async with asyncio.timeout(self.total):
                addresses = await resolve_async(delivery.url, self.allowed_hosts)
                status, excerpt = await self._post(delivery, addresses)
        except UnsafeUrlError as error:
            return outcome(error=f"not sent: {error}")
        except TimeoutError:
            return outcome(error=f"no answer within {self.total:g} s (WEBHOOK_TIMEOUT)")
        except httpx.TimeoutException as error:
            return outcome(error=f"timed out: {type(error).__name__}")
        except httpx.HTTPError as error:
            return outcome(error=f"{type(error).__name__}: {error}")
        except ValueError as error:  # a secret that is not base64 (set by hand in the table)
            return outcome(error=f"not sent: the endpoint's secret is not valid ({error})")
        return outcome(status_code=status, excerpt=excerpt)

    async def _post(self, delivery: Claimed, addresses: list[Address]) -> tuple[int, str | None]:
        parts = parse(delivery.url)
        host = parts.hostname or ""
        client = self._client(parts.scheme, host, port_of(parts))
        body = webhook_delivery.body(delivery.event)
        moment = datetime.now(UTC)
        headers = {
            "Host": parts.netloc,
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": "user-api-webhooks",
            "webhook-id": str(delivery.event.id),
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signatures(delivery, moment, body),
        }
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        failure: httpx.HTTPError | None = None
        for address in addresses:  # each checked; the next when one refuses the connection
            request = client.build_request(
                "POST",
                pinned_url(delivery.url, address),
                content=body,
                headers=headers,
                extensions=extensions,
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError as error:
                failure = error
                continue
            try:
                return response.status_code, await _excerpt(response)
            finally:
                await response.aclose()
        assert failure is not None  # noqa: S101 - addresses is never empty (resolve says so)
        raise failure

    def _client(self, scheme: str, host: str, port: int) -> httpx.AsyncClient:
        # One client per host name: its kept-alive connections are keyed by address, and a
        # TLS connection made for one name (its SNI, its certificate) must not carry another
        # name's requests to the same address.
        key = (scheme, host.lower(), port)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(
                    max_connections=self.concurrency, max_keepalive_connections=self.per_endpoint
                ),
            )
        return client

    async def _close_clients(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


async def _excerpt(response: httpx.Response) -> str | None:
    """The answer's first EXCERPT_MAX bytes as text; the rest is never read."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= EXCERPT_MAX:
            break
    return kept[:EXCERPT_MAX].decode("utf-8", "replace") or None
