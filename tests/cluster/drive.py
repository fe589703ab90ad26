"""What the scale-out checks do through HAProxy, whoever runs the topology: the cluster
check (tests/cluster, processes on loopback) and the scaled profile (compose.yaml, driven
by tests/cluster/compose_check.py). Each returns its figures and asserts what must hold."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from app.db.notifications import LISTENER_NAME
from tests.faults.helpers import Load, load

THREADS = 8  # load threads: each has one request out at a time
OK = {"200", "201"}


class RuntimeAPI:
    """HAProxy's runtime API as the checks use it; ``command`` says how to reach it."""

    def command(self, line: str) -> str:
        """Send one runtime-API command; return its answer."""
        raise NotImplementedError

    def _server(self, server: str) -> list[str]:
        """The server's row of ``show servers state``: [.., name, address, op state, ..]."""
        for row in self.command("show servers state replicas").splitlines()[2:]:
            fields = row.split()
            if len(fields) > 5 and fields[3] == server:
                return fields
        return []

    def state(self, server: str) -> str:
        """The server's operational state as HAProxy sees it: UP, DOWN, MAINT..."""
        fields = self._server(server)
        # srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping.
        states = {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}
        return states[fields[5]] if fields else "UNKNOWN"

    def address(self, server: str) -> str:
        """The address HAProxy sends the server's requests to (its name looked up)."""
        fields = self._server(server)
        return fields[4] if fields else ""

    def wait_until(self, server: str, state: str, seconds: float = 20) -> None:
        """Wait until HAProxy's health checks put the server in this state."""
        deadline = time.monotonic() + seconds
        while self.state(server) != state:
            if time.monotonic() > deadline:
                msg = f"{server} never became {state}: {self.command('show stat')}"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def sessions(self, server: str) -> int:
        """Requests the server has in flight now (HAProxy's current sessions)."""
        for row in self.command("show stat").splitlines():
            fields = row.split(",")
            if len(fields) > 4 and fields[0] == "replicas" and fields[1] == server:
                return int(fields[4] or 0)
        return 0


@dataclass(frozen=True)
class Front:
    """Where the checks send their requests (HAProxy), with which key, and its runtime API."""

    url: str
    auth: Mapping[str, str]
    haproxy: RuntimeAPI


def mixed(front: Front, prefix: str) -> Callable[[httpx.Client, int], httpx.Response]:
    """A load's request: mostly reads of one user, every fourth a create of a new one."""
    url, auth = front.url, front.auth
    first = httpx.post(
        f"{url}/users", json={"username": f"{prefix}seed", "email": f"{prefix}seed@x.io"},
        headers=auth,
    )  # fmt: skip
    assert first.status_code == 201, first.text
    user = first.json()["id"]
    # Read your writes: without the token a read so soon may find the replica not there yet.
    reads = {**auth, "Consistency-Token": first.headers["Consistency-Token"]}

    def send(client: httpx.Client, n: int) -> httpx.Response:
        if n % 4 == 0:
            body = {"username": f"{prefix}{n}", "email": f"{prefix}{n}@x.io"}
            return client.post(f"{url}/users", json=body, headers=auth)
        return client.get(f"{url}/users/{user}", headers=reads)

    return send


def backends_sql(database: str) -> str:
    """SQL counting the client backends of ``database`` that PgBouncer opened: not the
    revocation listeners (direct by design), nor the asking session."""
    return (
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        f" AND application_name <> '{LISTENER_NAME}'"
    )


def loaded_to_the_end(running: Load) -> None:
    """Assert the load still ran when the block ended: its own time cap did not stop it."""
    last = max((s.started + s.took for s in running.samples), default=0.0)
    assert time.monotonic() - last < 2, "the load stopped (its time cap) before the check did"


def backends_within_pool(
    front: Front, backends: Callable[[], int], pool_size: int, seconds: float = 10
) -> dict[str, object]:
    """The primary's client backends, sampled under load: PgBouncer's pool, filled, no more."""
    seen = []
    with load(mixed(front, "pool"), threads=THREADS, seconds=seconds + 30) as running:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen.append(backends())
            time.sleep(0.05)
        loaded_to_the_end(running)
    outcomes = Load.outcomes(running.samples)
    figures: dict[str, object] = {
        "requests": sum(outcomes.values()),
        "samples": len(seen),
        "most": max(seen),
        "pool_size": pool_size,
    }
    assert set(outcomes) <= OK, figures
    # At the pool and not under it: the load asked for more, and the pool is what held it.
    assert max(seen) == pool_size, figures
    return figures


def flow_and_race(front: Front) -> dict[str, object]:
    """The users and posts flow, then 20 concurrent creates of one name: one winner."""
    url, auth = front.url, front.auth
    with httpx.Client(base_url=url, headers=auth, timeout=15) as c:
        user = c.post("/users", json={"username": "flow", "email": "flow@x.io"})
        assert user.status_code == 201, user.text
        uid = user.json()["id"]
        post = c.post(f"/users/{uid}/posts", json={"title": "t", "body": "b"})
        assert post.status_code == 201, post.text
        token = {"Consistency-Token": post.headers["Consistency-Token"]}
        assert c.get(f"/posts/{post.json()['id']}", headers=token).status_code == 200
        assert c.patch(f"/users/{uid}", json={"email": "flow2@x.io"}).status_code == 200
        assert c.delete(f"/users/{uid}").status_code == 204

    names = ["Racer", "racer", "RACER", "rAcer", "raCer"] * 4
    barrier = threading.Barrier(len(names))

    def race(i: int) -> int:
        with httpx.Client(base_url=url, headers=auth) as c:
            c.get("/healthz")
            barrier.wait(timeout=30)
            body = {"username": names[i], "email": f"racer{i}@x.io"}
            return c.post("/users", json=body, timeout=15).status_code

    with ThreadPoolExecutor(len(names)) as pool:
        statuses = Counter(pool.map(race, range(len(names))))
    assert statuses == {201: 1, 409: len(names) - 1}, statuses
    return {"race": dict(statuses)}


def kill_under_load(
    front: Front,
    victim: str,
    kill: Callable[[], None],
    start: Callable[[], None],
) -> dict[str, object]:
    """SIGKILL one replica under load, start it again: only what it had in flight fails."""
    with load(mixed(front, f"kill{victim}"), threads=THREADS, seconds=60) as running:
        time.sleep(2)
        in_flight = front.haproxy.sessions(victim)
        killed_at = time.monotonic()
        kill()
        time.sleep(3)
        start()
        front.haproxy.wait_until(victim, "UP", seconds=60)
        time.sleep(2)
        loaded_to_the_end(running)
    outcomes = Load.outcomes(running.samples)
    failed = {k: v for k, v in outcomes.items() if k not in OK}
    after = running.between(killed_at + 4, time.monotonic())
    figures = {"requests": sum(outcomes.values()), "in_flight_on_it": in_flight, "failed": failed}
    # Each load thread has one request out at a time: at most that many were on the victim.
    assert sum(failed.values()) <= THREADS, figures
    # A create the victim may have committed is never sent again (a 409 would show it).
    assert "409" not in failed, figures
    assert set(Load.outcomes(after)) <= OK, Load.outcomes(after)
    return figures


def rolling_release(
    front: Front,
    migrate: Callable[[], None],
    replace: Mapping[str, Callable[[], None]],
) -> dict[str, object]:
    """The release step, then each replica in turn out of rotation, drained, stopped and
    replaced by one that runs the release (``replace``), and put back."""
    with load(mixed(front, "roll"), threads=THREADS, seconds=180) as running:
        time.sleep(1)
        migrate()
        haproxy = front.haproxy
        for name, again in replace.items():
            haproxy.command(f"set server replicas/{name} state drain")
            deadline = time.monotonic() + 10
            while haproxy.sessions(name) and time.monotonic() < deadline:
                time.sleep(0.05)
            again()
            haproxy.command(f"set server replicas/{name} state ready")
            haproxy.wait_until(name, "UP", seconds=60)
        time.sleep(1)
        loaded_to_the_end(running)
    outcomes = Load.outcomes(running.samples)
    figures = {"requests": sum(outcomes.values()), "outcomes": dict(outcomes)}
    assert set(outcomes) <= OK, figures
    return figures


def staleness(front: Front, pairs: int = 100) -> dict[str, object]:
    """Reads right after their writes, without the token (may be stale) and with it (never)."""
    stale = {"without": 0, "with": 0}
    with httpx.Client(base_url=front.url, headers=front.auth, timeout=15) as c:
        for n in range(pairs):
            for kind in ("without", "with"):
                made = c.post(
                    "/users", json={"username": f"st{kind}{n}", "email": f"{kind}{n}@s.io"}
                )
                assert made.status_code == 201, made.text
                token = {"Consistency-Token": made.headers["Consistency-Token"]}
                read = c.get(f"/users/{made.json()['id']}", headers=token if kind == "with" else {})
                stale[kind] += read.status_code == 404
    assert stale["with"] == 0, stale
    return {"pairs": pairs, "stale": stale}
