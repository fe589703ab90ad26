"""Scale-out on the real engines, all on loopback, each its own process: a PostgreSQL primary
and its pg_basebackup streaming replica, PgBouncer (transaction mode) in front of each,
three replicas of the shipped server, and HAProxy in front of them (health checks on
/readyz, retries of a request whose connection failed). Every request goes through HAProxy.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from app import create_app
from app.config import Settings
from app.db.session import db
from app.services.api_keys import ALL_SCOPES, revoke_api_key
from bench.run import cpu_seconds
from tests.cluster.drive import (
    Front,
    backends_sql,
    backends_within_pool,
    flow_and_race,
    kill_under_load,
    rolling_release,
    staleness,
)
from tests.cluster.servers import HAProxy, PgBouncer
from tests.faults.cluster import PrivateCluster, StreamingReplica
from tests.faults.helpers import Load, load, report
from tests.helpers import IN_CI, free_port, server_env, wait_until_serving

pytestmark = [pytest.mark.cluster, pytest.mark.live]

REPLICAS = ("s1", "s2", "s3")  # the names docker/cluster/haproxy.cfg gives them
# Each PgBouncer's server connections: fewer than the replicas' pools could open (3
# replicas x 2 engines x DB_POOL_SIZE 4, plus asyncpg's), so the cap is PgBouncer's.
POOL_SIZE = 2


@dataclass
class Replica:
    """One replica of the shipped server (granian's master and its worker)."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: "subprocess.Popen[bytes] | None" = None

    def start(self) -> None:
        """Start it and wait until it answers."""
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.server"],
                env={**os.environ, **self.env, **server_env(self.port, 1, 4)},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        wait_until_serving(f"http://127.0.0.1:{self.port}", self.process, self.log)

    def pids(self) -> list[int]:
        """The master and its workers."""
        assert self.process is not None
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [self.process.pid, *(int(pid) for pid in found.stdout.split())]

    def kill(self) -> None:
        """SIGKILL the master and every worker at once."""
        for pid in self.pids():
            os.kill(pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """A graceful stop, then a start."""
        self.terminate()
        self.start()

    def terminate(self) -> None:
        """SIGTERM (a graceful stop) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Topology:
    """What the tests drive, and what they inspect."""

    primary: PrivateCluster
    replica: StreamingReplica
    bouncers: tuple[PgBouncer, PgBouncer]
    haproxy: HAProxy
    replicas: dict[str, Replica]
    token: str
    folder: Path

    def processes(self) -> dict[str, list[int]]:
        """The pids of each part of the topology, by part."""
        return {
            "api": [pid for service in self.replicas.values() for pid in service.pids()],
            "postgresql": [*self.primary.pids(), *self.replica.pids()],
            "pgbouncer": [bouncer.process.pid for bouncer in self.bouncers],
            "haproxy": [self.haproxy.process.pid],
        }

    @property
    def auth(self) -> dict[str, str]:
        """Headers with the key."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def front(self) -> Front:
        """HAProxy, the key and HAProxy's runtime API, for tests.cluster.drive."""
        return Front(self.haproxy.url, self.auth, self.haproxy)


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    """The whole topology, stopped (by pid) and removed afterwards."""
    for tool in ("haproxy", "pgbouncer"):
        if shutil.which(tool) is None:
            why = f"{tool} not found: apt-get install haproxy pgbouncer (.ci/run does)"
            if IN_CI:
                pytest.fail(why)
            pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="scale-out-"))
    folder.chmod(0o755)  # PgBouncer runs as postgres when the tests run as root
    primary = PrivateCluster(free_port())
    replica = StreamingReplica(primary, free_port())
    started: list[PgBouncer | HAProxy | Replica] = []
    try:
        primary.create()
        primary.migrate()
        token = primary.api_key("cluster", ALL_SCOPES)
        replica.create()
        to_primary = PgBouncer(folder / "pgbouncer-primary", primary.port, POOL_SIZE)
        started.append(to_primary)
        to_replica = PgBouncer(folder / "pgbouncer-replica", replica.port, POOL_SIZE)
        started.append(to_replica)
        env = {
            "DATABASE_URL": to_primary.url,
            "DB_PGBOUNCER": "true",
            "DATABASE_REPLICA_URL": to_replica.url,
            # LISTEN needs a session PgBouncer's transaction mode cannot give.
            "DB_LISTEN_URL": primary.url,
            "DB_POOL_SIZE": "4",
            "ASYNCPG_POOL_SIZE": "2",
            "LOG_LEVEL": "WARNING",
        }
        replicas = {
            name: Replica(name, free_port(), {**env, "INSTANCE_PATH": str(folder / name)},
                          folder / f"{name}.log")
            for name in REPLICAS
        }  # fmt: skip
        for service in replicas.values():
            service.start()
            started.append(service)
        haproxy = HAProxy(folder / "haproxy", [r.port for r in replicas.values()])
        started.append(haproxy)
        for name in REPLICAS:
            haproxy.wait_until(name, "UP")
        bouncers = (to_primary, to_replica)
        yield Topology(primary, replica, bouncers, haproxy, replicas, token, folder)
    finally:
        for process in reversed(started):
            if isinstance(process, Replica):
                process.terminate()
            else:
                process.stop()
        replica.destroy()
        primary.destroy()


def _backends(primary: PrivateCluster) -> int:
    with psycopg.connect(primary.admin_dsn, autocommit=True) as conn:
        return _count_backends(conn)


def _count_backends(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The primary's client backends that PgBouncer opened."""
    row = conn.execute(backends_sql("app")).fetchone()
    return int(row[0]) if isinstance(row, tuple) and isinstance(row[0], int) else 0


def test_users_and_posts_flow_and_one_winner_of_a_race(topology: Topology) -> None:
    report("users and posts flow, one name raced", flow_and_race(topology.front))


def test_postgresql_connections_stay_within_pgbouncers_pool(topology: Topology) -> None:
    figures = backends_within_pool(
        topology.front, lambda: _backends(topology.primary), POOL_SIZE, seconds=5
    )
    report("connections under load", figures)


def test_a_killed_replica_fails_only_what_it_had_in_flight(topology: Topology) -> None:
    victim = topology.replicas["s2"]
    figures = kill_under_load(topology.front, "s2", victim.kill, victim.start)
    report("a replica SIGKILLed under load", figures)


def test_a_rolling_release_under_load_fails_nothing(topology: Topology) -> None:
    restart = {name: service.restart for name, service in topology.replicas.items()}
    report(
        "rolling release, 3 replicas",
        rolling_release(topology.front, topology.primary.migrate, restart),
    )


def test_reads_without_the_token_may_be_stale_with_it_never(topology: Topology) -> None:
    # Write then read at once, through HAProxy, the read on the replica's side of PgBouncer.
    report("staleness, a read right after its write", staleness(topology.front))


def test_a_revoked_key_is_refused_by_every_replica_within_a_second(topology: Topology) -> None:
    token = topology.primary.api_key("doomed", ("users:read",))
    headers = {"Authorization": f"Bearer {token}"}
    urls = [f"http://127.0.0.1:{r.port}/users" for r in topology.replicas.values()]
    for url in urls:  # each replica verifies the key and caches it (10 s)
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200
    # Revoked here, as `flask api-keys revoke` does, so the clock starts at the commit.
    app = create_app(Settings(DATABASE_URL=topology.primary.url, INSTANCE_PATH=topology.folder))
    with app.app_context():
        revoke_api_key(token.split("_")[1])
        db.session.commit()
        revoked_at = time.monotonic()
        db.engine.dispose()
    refused_after: dict[str, float] = {}
    while len(refused_after) < len(urls) and time.monotonic() - revoked_at < 5:
        for url in urls:
            if url not in refused_after and httpx.get(url, headers=headers).status_code == 401:
                refused_after[url] = round(time.monotonic() - revoked_at, 3)
    report(
        "revocation across 3 replicas, s after the commit",
        {"refused": sorted(refused_after.values())},
    )
    assert len(refused_after) == len(urls), refused_after
    assert max(refused_after.values()) < 1.0, refused_after


def _throughput(topology: Topology, name: str, seconds: float) -> dict[str, object]:
    """Requests/s of GET /users/{id} through HAProxy, the primary's peak backends, and the
    CPU each request cost each part of the topology (the load's own client included)."""
    url = topology.haproxy.url
    body = {"username": name, "email": f"{name}@x.io"}
    made = httpx.post(f"{url}/users", json=body, headers=topology.auth)
    assert made.status_code == 201, made.text
    reads = {**topology.auth, "Consistency-Token": made.headers["Consistency-Token"]}
    path = f"{url}/users/{made.json()['id']}"
    peak = 0
    # One connection for the sampling: a new one each time would be a backend's start-up
    # in PostgreSQL's CPU.
    with (
        psycopg.connect(topology.primary.admin_dsn, autocommit=True) as conn,
        load(lambda c, _n: c.get(path, headers=reads), threads=16, seconds=seconds + 5) as running,
    ):
        time.sleep(0.5)  # every client under way
        parts = topology.processes()
        before = {part: cpu_seconds(pids) for part, pids in parts.items()}
        client_before = time.process_time()
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            peak = max(peak, _count_backends(conn))
            time.sleep(0.1)
        client = time.process_time() - client_before
        after = {part: cpu_seconds(pids) for part, pids in parts.items()}
        running.stop.set()
    window = running.between(started, started + seconds)
    assert set(Load.outcomes(window)) == {"200"}, Load.outcomes(window)
    assert peak <= POOL_SIZE, peak
    # The same pids at both ends, taken before the window: none of them stops in it.
    cpu = {part: after[part] - before[part] for part in parts}
    cpu["client"] = client
    per_request = {part: round(spent / len(window) * 1e6) for part, spent in cpu.items()}
    return {
        "req/s": len(window) / seconds,
        "primary backends": peak,
        "CPU us/request": {**per_request, "all": sum(per_request.values())},
    }


def test_throughput_with_one_and_with_three_replicas(topology: Topology) -> None:
    # Two CPUs serve every process here (HAProxy, PgBouncer, PostgreSQL, the load itself):
    # three replicas share the same cores, so this shows the overhead, not scaling.
    figures: dict[str, object] = {}
    for name in ("s2", "s3"):
        topology.haproxy.command(f"set server replicas/{name} state maint")
    try:
        figures["1 replica"] = _throughput(topology, "tput1", 4)
    finally:
        for name in ("s2", "s3"):
            topology.haproxy.command(f"set server replicas/{name} state ready")
            topology.haproxy.wait_until(name, "UP")
    figures["3 replicas"] = _throughput(topology, "tput3", 4)
    report("GET /users/{id} through HAProxy, 16 clients", figures)
