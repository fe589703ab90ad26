"""Drive compose.yaml's scaled profile through HAProxy's published port, as the cluster
check drives its processes (tests.cluster.drive), and print the figures. Run by
scripts/container-check.sh once `docker compose --profile scaled up` has started it:

    python -m tests.cluster.compose_check --url http://127.0.0.1:8080 --pool-size 10 \
        --compose 'docker compose --profile scaled'

An assertion that does not hold ends it with a traceback and a non-zero status.
"""

import argparse
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx

from app.config import Settings
from app.db import deadlines
from app.services.api_keys import ALL_SCOPES
from tests.cluster.drive import (
    Front,
    RuntimeAPI,
    backends_sql,
    backends_within_pool,
    flow_and_race,
    kill_under_load,
    rolling_release,
    staleness,
)
from tests.faults.helpers import figures_line

FLASK = ("flask", "--app", "app")
SERVICES = {"s1": "api-1", "s2": "api-2", "s3": "api-3"}  # HAProxy's name: compose's


class Compose:
    """The compose command line the check was given, for one project."""

    def __init__(self, command: str) -> None:
        self.command = shlex.split(command)

    def run(self, *args: str) -> str:
        """Run one compose subcommand; its standard output, or an error with its stderr."""
        done = subprocess.run(
            [*self.command, *args], capture_output=True, text=True, timeout=180, check=False
        )
        if done.returncode != 0:
            msg = f"{' '.join(args)}: exit {done.returncode}\n{done.stderr[-3000:]}"
            raise RuntimeError(msg)
        return done.stdout

    def action(self, *args: str) -> Callable[[], None]:
        """A subcommand to run later (a kill, a start), its output dropped."""

        def run() -> None:
            self.run(*args)

        return run

    @staticmethod
    def flask_args(*args: str) -> tuple[str, ...]:
        """The compose arguments that run the CLI inside a running API replica (quicker than
        a new container)."""
        return ("exec", "-T", "api-1", *FLASK, *args)

    def flask(self, *args: str) -> str:
        """Run the CLI inside a running API replica; its standard output."""
        return self.run(*self.flask_args(*args))


class ComposeHAProxy(RuntimeAPI):
    """The haproxy service's runtime API, on its container's loopback (compose.yaml)."""

    def __init__(self, compose: Compose) -> None:
        self.compose = compose

    def command(self, line: str) -> str:
        """Send one runtime-API command; return its answer."""
        # The image has no socat: bash's /dev/tcp speaks the one-line protocol.
        script = 'exec 3<>/dev/tcp/127.0.0.1/9999; printf "%s\\n" "$0" >&3; cat <&3'
        return self.compose.run("exec", "-T", "haproxy", "bash", "-c", script, line)


def role_deadlines(compose: Compose) -> dict[str, object]:
    """The API's deadlines hold through PgBouncer, which passes no startup options: the
    primary's first start set them on the role (docker/cluster/role.sh)."""
    expected = deadlines.postgresql_settings(Settings())  # the API's defaults, in ms
    names = ", ".join(f"'{name}'" for name in expected)
    query = f"SELECT name, setting FROM pg_settings WHERE name IN ({names})"
    script = 'PGPASSWORD="$APP_PASSWORD" psql -h 127.0.0.1 -p 6432 -U app -d users -XAtc "$0"'
    rows = compose.run("exec", "-T", "pgbouncer", "bash", "-c", script, query).split()
    got = dict(row.split("|", 1) for row in rows)
    assert got == expected, (got, expected)
    return dict(got)


def replication_slot(compose: Compose) -> dict[str, object]:
    """The replica streams through the primary's slot, which keeps what it has not had."""
    query = "SELECT slot_name, active FROM pg_replication_slots"
    got = compose.run("exec", "-T", "primary", "psql", "-d", "users", "-XAtc", query).split()
    assert got == ["replica|t"], got
    return {"slots": got}


def revocation(front: Front, compose: Compose) -> dict[str, object]:
    """A key revoked with the CLI is refused by every replica within a second."""
    token = compose.flask("api-keys", "create", "doomed", "--scope", "users:read").strip()
    # A new connection per request: HAProxy's round robin then visits each replica in turn.
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    url = f"{front.url}/users"
    warm = [httpx.get(url, headers=headers, timeout=10).status_code for _ in range(9)]
    assert warm == [200] * 9, warm  # each replica has verified the key and cached it (10 s)
    seen: list[tuple[float, int]] = []  # (when the request was sent, its status)
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(headers=headers, timeout=10) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    status = client.get(url).status_code
                except httpx.TransportError:
                    status = 0  # recorded, not a dead thread: the checks below name it
                seen.append((sent, status))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    # The CLI says "Revoked" on stderr right after its commit: the clock starts there.
    argv = [*compose.command, *compose.flask_args("api-keys", "revoke", token.split("_")[1])]
    committed = None
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as cli:
        hung = threading.Timer(120, cli.kill)  # a CLI that hangs ends the check, not CI
        hung.start()
        assert cli.stderr is not None
        for line in cli.stderr:
            if committed is None and line.startswith("Revoked API key"):
                committed = time.monotonic()
        hung.cancel()
    assert cli.returncode == 0, cli.returncode
    assert committed is not None, "the CLI never said it revoked the key"
    time.sleep(2)
    stop.set()
    poller.join(timeout=15)
    last_accepted = max((t for t, status in seen if status == 200), default=committed)
    after = [status for t, status in seen if t > last_accepted]
    figures: dict[str, object] = {
        # Negative: the last request the key got through was sent before the CLI's line.
        "last_accepted_s_after_the_commit": round(last_accepted - committed, 3),
        "refused_in_a_row": len(after),
    }
    # Three round-robin rounds at least, every one refused: no replica still takes the key.
    assert len(after) >= 3 * len(SERVICES), figures
    assert set(after) == {401}, figures
    assert last_accepted - committed < 1.0, figures
    return figures


def main() -> None:
    """Bring nothing up: check the running profile, print each figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="HAProxy's published address")
    parser.add_argument("--compose", required=True, help="the compose command, with --profile")
    parser.add_argument("--pool-size", type=int, required=True, help="PgBouncer's POOL_SIZE")
    args = parser.parse_args()
    compose = Compose(args.compose)
    haproxy = ComposeHAProxy(compose)
    for name in SERVICES:
        haproxy.wait_until(name, "UP", seconds=120)
    token = compose.run("run", "--rm", "-T", "release", "api-keys", "create", "compose-check",
                        *(f"--scope={scope}" for scope in ALL_SCOPES)).strip()  # fmt: skip
    front = Front(args.url, {"Authorization": f"Bearer {token}"}, haproxy)

    def report(name: str, figures: dict[str, object]) -> None:
        sys.stdout.write(figures_line(name, figures) + "\n")
        sys.stdout.flush()

    report("users and posts flow, one name raced", flow_and_race(front))
    report("the API's deadlines through PgBouncer", role_deadlines(compose))
    report("the replica's slot on the primary", replication_slot(compose))

    def backends() -> int:
        sql = backends_sql("users")
        return int(compose.run("exec", "-T", "primary", "psql", "-d", "users", "-Atc", sql))

    report("primary's backends under load", backends_within_pool(front, backends, args.pool_size))
    # SIGKILL to the container's first process: the kernel kills the rest of its namespace.
    kill, start = compose.action("kill", "-s", "SIGKILL", "api-2"), compose.action("start", "api-2")
    report("api-2 SIGKILLed under load, then started", kill_under_load(front, "s2", kill, start))
    # The release step (migrate), then each replica drained by HAProxy and replaced: compose
    # stops the old container (SIGTERM: it finishes what it has) and starts a new one from
    # the image, on an address HAProxy looks up again.
    migrate = compose.action("run", "--rm", "-T", "release")

    def placed() -> dict[str, tuple[str, str]]:  # each replica's container id and address
        return {name: (compose.run("ps", "-q", svc), haproxy.address(name))
                for name, svc in SERVICES.items()}  # fmt: skip

    before = placed()
    recreate = ("up", "-d", "--no-deps", "--no-build", "--force-recreate", "-t", "30")
    replace = {name: compose.action(*recreate, svc) for name, svc in SERVICES.items()}
    figures = rolling_release(front, migrate, replace)
    after = placed()
    # A new container for each, not the old one restarted; a new address is up to Docker.
    assert all(before[name][0] != after[name][0] for name in SERVICES), (before, after)
    moved = sum(before[name][1] != after[name][1] for name in SERVICES)
    report("rolling release (release, then each replica replaced)",
           {**figures, "new_containers": len(SERVICES), "new_addresses": moved})  # fmt: skip
    report("staleness, a read right after its write", staleness(front))
    report("revocation across the three replicas", revocation(front, compose))


if __name__ == "__main__":
    main()
