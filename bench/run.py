"""HTTP benchmark on PostgreSQL: our service against the tutorial's app, a bare-WSGI
ceiling and the FastAPI and Litestar peers, plus a trivial async view against its sync twin.
One run, side by side, rounds interleaved; every ratio is printed round by round and as the
median of those (steadier than a ratio of medians on a busy machine).

Needs wrk (Debian: apt-get install wrk) and PostgreSQL. Loopback only; every load is
bounded in time. Usage: .venv/bin/python -m bench.run [--duration 10] [--connections 16]
[--peers: ours under the shipped server and the peers only]
"""

import argparse
import contextlib
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Settings
from app.db import migrations
from app.db.session import db
from app.models import User
from app.services.api_keys import ALL_SCOPES, create_api_key

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_ADMIN_URL = os.environ.get(
    "BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
)
DB_NAME = "app_bench"
USERS = 1000
CHILDREN = resource.RUSAGE_CHILDREN
OURS = "app:create_app()"
# Ours as it was when the serving-speed issue (#16) was filed, the commit before the
# hardening (#14): what its "as served today" target compares with. Same schema (0003).
FILED = "8a4ec4a"


@dataclass
class Result:
    """One wrk run, with the CPU each side spent per request while it ran."""

    variant: str
    endpoint: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    server_us: float
    postgres_us: float
    client_us: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Prefixed to every database a benchmark makes, so that two checkouts benchmarking on one
# server at once (BENCH_DB_PREFIX=h1_ and h2_, say) do not drop each other's databases.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "")


def fresh_database(name: str, backend: str = "postgresql") -> str:
    """Drop and create an empty database (on SQLite: a file in a new temporary folder);
    return its URL. Its name is ``name`` after BENCH_DB_PREFIX."""
    name = DB_PREFIX + name
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix=f'{name}-')}/bench.db"
    admin_url = ADMIN_URL if backend == "postgresql" else MARIADB_ADMIN_URL
    quote = '"' if backend == "postgresql" else "`"
    force = " WITH (FORCE)" if backend == "postgresql" else ""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def create_tutorial_table(url: str) -> None:
    """(Re)make the tutorial app's own table as its db.create_all() would, with our rows.

    Sharing our table would hand it our indexes instead of its own: its check-then-insert
    reads ``username = ...``, which only its own unique index on username serves.
    """
    os.environ["DATABASE_URL"] = url  # the tutorial's module reads it when imported
    from bench.apps.tutorial import User as TutorialUser  # noqa: PLC0415

    table = TutorialUser.__table__
    engine = create_engine(url)
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
        conn.execute(
            text(
                "INSERT INTO tutorial_user (id, username, email, created_at, updated_at)"
                " SELECT id, username, email, created_at, updated_at FROM user_account"
            )
        )
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('tutorial_user', 'id'),"
                " (SELECT coalesce(max(id), 0) + 1 FROM tutorial_user), false)"
            )
        )
    engine.dispose()


def prepare_database(name: str = DB_NAME, backend: str = "postgresql") -> tuple[str, str, int]:
    """Make a fresh database at head with USERS users (on PostgreSQL, the tutorial's too);
    return its URL, a key, the first id."""
    url = fresh_database(name, backend)
    app = create_app(Settings(DATABASE_URL=url, LOG_LEVEL="WARNING"))
    with app.app_context():
        migrations.migrate(db.engine)
        rows = [{"username": f"seed{n}", "email": f"seed{n}@example.com"} for n in range(USERS)]
        db.session.execute(insert(User), rows)
        _, token = create_api_key("bench", list(ALL_SCOPES))
        db.session.commit()
        first = db.session.execute(text("SELECT min(id) FROM user_account")).scalar_one()
        for engine in db.engines.values():
            engine.dispose()
    if backend == "postgresql":
        create_tutorial_table(url)
    return url, token, int(first)


SERVERS = ("gunicorn", "shipped", "granian-wsgi", "uvicorn")


def _command(server: str, target: str, port: int, workers: int, threads: int) -> list[str]:
    """The command line that serves ``target`` (module:attr, or module:factory())."""
    bind = ["127.0.0.1", str(port)]
    if server == "gunicorn":
        return [
            *("-m", "gunicorn", "--bind", ":".join(bind), "--workers", str(workers)),
            *("--worker-class", "gthread", "--threads", str(threads), "--no-control-socket"),
            target,
        ]
    if server == "shipped":
        # Ours is python -m app.server itself; any other app gets the same server and bridge.
        return ["-m", "app.server"] if target == OURS else ["-m", "bench.apps.served", target]
    if server == "granian-wsgi":
        # granian's own WSGI interface (no bridge): what the shipped server would be without
        # app/server/bridge.py, whose reasons are in its docstring.
        factory = target.endswith("()")
        return [
            *("-m", "granian", "--interface", "wsgi", "--host", bind[0], "--port", bind[1]),
            *("--workers", str(workers), "--blocking-threads", str(threads), "--no-ws"),
            *(["--factory"] if factory else []),
            target.removesuffix("()"),
        ]
    return [
        *("-m", "uvicorn", "--host", bind[0], "--port", bind[1], "--workers", str(workers)),
        *("--no-access-log", "--log-level", "warning", target),
    ]


@contextmanager
def serve(
    server: str,
    target: str,
    env: dict[str, str],
    sizing: tuple[int, int] = (2, 4),
    tree: Path = ROOT,
) -> Iterator[tuple[str, int]]:
    """Serve a target of ``tree`` (a checkout) with one of SERVERS at ``sizing`` (processes,
    threads); yield the base URL and the server's pid (its workers are its descendants).
    Stopped by pid at the end."""
    workers, threads = sizing
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="bench-")) / f"{server}.log"
    own = {"PORT": str(port), "WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads)}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, *_command(server, target, port, workers, threads)],
            cwd=tree,  # gunicorn reads the tree's gunicorn.conf.py, as it was served
            env={**os.environ, **env, "PYTHONPATH": str(tree), **own},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # Any answer but a 5xx says the app is loaded (every app's / is a 404).
                if httpx.get(base + "/", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{target} under {server} did not start; see {log}")
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The files of one revision of ours, in a temporary folder removed afterwards (git
    archive: no worktree left registered in the repository)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{revision}-") as tree:
        archive = subprocess.run(
            ["git", "archive", revision], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        yield Path(tree)


# The rate limiter runs as shipped (per-process memory), with a budget no run reaches: one
# key sends thousands of requests a second here.
UNREACHED_LIMIT = "1000000000/minute"


def server_env(url: str) -> dict[str, str]:
    """What every served app of bench/ gets in its environment: the database, quiet logs."""
    return {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "RATE_LIMIT": UNREACHED_LIMIT}


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (a server's master and workers)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return sorted(found)


def _postgres_pids(url: str) -> list[int]:
    """The benchmark database's backends and the server's own processes (WAL writer,
    checkpointer, ...), which work for its commits; not other databases' clients."""
    engine = create_engine(url)
    with engine.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND (datname = current_database() OR datname IS NULL)"
            )
        ).scalars()
        found = [int(pid) for pid in pids]
    engine.dispose()
    return found


def cpu_seconds(pids: list[int]) -> float:
    """The CPU seconds (user and system) the live ones of these processes have used."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _lua(kind: str, token: str, first_id: int) -> str:
    auth = f'["Authorization"] = "Bearer {token}"'
    if kind == "get_one":
        return f"""
wrk.headers["Authorization"] = "Bearer {token}"
request = function()
  return wrk.format("GET", "/users/" .. math.random({first_id}, {first_id + USERS - 1}))
end
"""
    if kind == "post":
        # Unique across wrk's threads and across runs (warm-up included): a name repeated
        # is a 409, and 2 of 45 runs once hit some when threads drew the same random tag.
        run = uuid.uuid4().hex[:12]
        return f"""
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local counter = 0
request = function()
  counter = counter + 1
  local name = "b{run}-" .. id .. "-" .. counter
  local body = '{{"username": "' .. name .. '", "email": "' .. name .. '@example.com"}}'
  return wrk.format("POST", "/users", {{{auth}, ["Content-Type"] = "application/json"}}, body)
end
"""
    return f'wrk.headers["Authorization"] = "Bearer {token}"\n'


def wrk(
    target: tuple[str, int],
    request: tuple[str, str],
    duration: int,
    connections: int,
    database: str,
) -> tuple[float, float, float, int, float, float, float]:
    """Run wrk for a bounded time; return requests/s, p50 ms, p99 ms, non-2xx count, and
    the CPU microseconds per request of the server's processes, PostgreSQL's and wrk's.
    ``target`` is the base URL and the server's pid, ``request`` the path and the Lua
    script that makes each request.

    Requests/s on a shared two-core machine swing with whatever else runs; CPU per request
    under load says where the time goes, and moves far less.
    """
    base, pid = target
    path, script = request
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    command = [
        "wrk",
        "-t",
        "2",
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--latency",
        "-s",
        lua.name,
        base + path,
    ]
    servers, databases = process_tree(pid), _postgres_pids(database)
    # wrk is this process's only child that ends during the run: RUSAGE_CHILDREN is its CPU.
    before = (cpu_seconds(servers), cpu_seconds(databases), resource.getrusage(CHILDREN))
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=duration + 60
    ).stdout
    after = (cpu_seconds(servers), cpu_seconds(databases), resource.getrusage(CHILDREN))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    count = int(re.search(r"(\d+) requests in", output)[1]) or 1  # type: ignore[index]
    client = sum(getattr(after[2], f) - getattr(before[2], f) for f in ("ru_utime", "ru_stime"))
    server_us = (after[0] - before[0]) / count * 1e6
    postgres_us = (after[1] - before[1]) / count * 1e6
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    bad = int(non_2xx[1]) if non_2xx else 0
    p50, p99 = percentile("50"), percentile("99")
    return rps, p50, p99, bad, server_us, postgres_us, client / count * 1e6


GET_ONE, GET_LIST, POST = "GET /users/{id}", "GET /users?limit=100", "POST /users"
APP_ENDPOINTS = [GET_ONE, GET_LIST, POST]
SYNC_PAIR = ["sync", "async"]  # a view and its async twin, compared by ratio
SCRIPTS = {
    GET_ONE: ("/users/1", "get_one"),
    GET_LIST: ("/users?limit=100", "plain"),
    POST: ("/users", "post"),
    "sync": ("/sync", "plain"),
    "async": ("/async", "plain"),
}


@dataclass(frozen=True)
class Variant:
    """One app under one server, and what is asked of it."""

    name: str
    server: str
    target: str
    endpoints: list[str]
    env: dict[str, str] = field(default_factory=dict)
    sizing: tuple[int, int] | None = None  # processes, threads; None: the run's
    tree: Path = ROOT  # the checkout served: this one, or an earlier revision's

    @property
    def label(self) -> str:
        """The app and its server, as the tables print them."""
        return f"{self.name} [{self.server}]"


PEERS = [
    Variant("fastapi", "uvicorn", "bench.apps.fastapi_peer:app", APP_ENDPOINTS),
    Variant("litestar", "uvicorn", "bench.apps.litestar_peer:app", APP_ENDPOINTS),
]


def plan_peers() -> list[Variant]:
    """Ours, the tutorial's app and the bare callable under the shipped server, and the
    peers under uvicorn: the issue's targets, nothing else."""
    return [
        Variant("ours", "shipped", OURS, APP_ENDPOINTS),
        Variant("tutorial", "shipped", "bench.apps.tutorial:app", APP_ENDPOINTS),
        Variant("bare-wsgi", "shipped", "bench.apps.bare:app", APP_ENDPOINTS),
        *PEERS,
    ]


def plan(servers: list[str], filed: Path) -> list[Variant]:
    """Every app under every WSGI server asked for, the peers under uvicorn, and ours as
    served before (``filed`` is the checkout of FILED)."""
    variants = []
    for server in servers:
        variants += [
            Variant("ours", server, OURS, APP_ENDPOINTS),
            Variant("tutorial", server, "bench.apps.tutorial:app", APP_ENDPOINTS),
            Variant("bare-wsgi", server, "bench.apps.bare:app", APP_ENDPOINTS),
            # The framework's floor: a Flask view that does nothing, and its async twin.
            Variant("no-op flask", server, "bench.apps.trivial:app", SYNC_PAIR),
        ]
    variants += [
        # What served ours before the shipped server: gunicorn gthread, 2 x 4; today's code,
        # and the code as it was when the issue was filed, on the same database.
        Variant("ours as served before", "gunicorn", OURS, [GET_ONE], sizing=(2, 4)),
        Variant(f"ours at {FILED}", "gunicorn", OURS, [GET_ONE], sizing=(2, 4), tree=filed),
        *PEERS,
        # Flask's own async path (asgiref, a loop per request), under the shipped server only.
        Variant(
            "no-op asgiref",
            "shipped",
            "bench.apps.trivial:app",
            SYNC_PAIR,
            {"TRIVIAL_RUNNER": "asgiref"},
        ),
    ]
    return variants


Rounds = dict[tuple[str, str], list[Result]]  # (variant, endpoint): one result a round


def measure(
    variants: list[Variant], args: argparse.Namespace, url: str, token: str, first_id: int
) -> tuple[list[Result], Rounds]:
    """Run every variant's endpoints, rounds interleaved; return each one's medians, and
    every round's results."""
    env = server_env(url)
    # Rounds interleave the variants, and medians are reported: a shared two-core machine
    # drifts, and a single run per variant would measure the drift.
    runs: Rounds = {}
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number} of {args.rounds}", flush=True)
        for variant in variants:
            # A pair compared by ratio (sync and async) alternates inside one server, so a
            # burst of noise on the machine hits both sides alike.
            repeats = 2 if variant.endpoints == SYNC_PAIR else 1
            sizing = variant.sizing or (args.workers, args.threads)
            with serve(
                variant.server, variant.target, {**env, **variant.env}, sizing, variant.tree
            ) as served:
                for endpoint in variant.endpoints * repeats:
                    path, kind = SCRIPTS[endpoint]
                    # A script each: the POST script's names are unique to it (a warm-up
                    # sharing it would make the measured run's names 409s).
                    warm_up = (path, _lua(kind, token, first_id))
                    wrk(served, warm_up, 1, args.connections, url)  # not counted
                    load = (path, _lua(kind, token, first_id))
                    figures = wrk(served, load, args.duration, args.connections, url)
                    runs.setdefault((variant.label, endpoint), []).append(
                        Result(variant.label, endpoint, *figures)
                    )
    results = []
    for (label, endpoint), done in runs.items():
        rps, p50, p99, server, postgres, client = (
            statistics.median(getattr(r, name) for r in done)
            for name in ("rps", "p50_ms", "p99_ms", "server_us", "postgres_us", "client_us")
        )
        bad = sum(r.non_2xx for r in done)
        results.append(Result(label, endpoint, rps, p50, p99, bad, server, postgres, client))
        spread = ", ".join(f"{r.rps:.0f}" for r in done)
        print(
            f"{label:<26} {endpoint:<20} {rps:>7.0f} req/s  p50 {p50:6.2f} ms"
            f"  p99 {p99:6.2f} ms  cpu {server:5.0f} / {postgres:4.0f} / {client:3.0f} us"
            f"  non-2xx {bad}  (runs: {spread})",
            flush=True,
        )
    return results, runs


# Issue #39's targets: ours under the shipped server against each, in requests/s.
GOALS = {
    GET_ONE: [
        ("tutorial", 1.5), ("fastapi [uvicorn]", 1.5), ("litestar [uvicorn]", 1.1),
        ("bare-wsgi", 0.45),
    ],
    GET_LIST: [("tutorial", 2.0), ("fastapi [uvicorn]", 2.0), ("litestar [uvicorn]", 2.0)],
    POST: [("tutorial", 3.0), ("fastapi [uvicorn]", 1.5), ("litestar [uvicorn]", 1.5)],
}  # fmt: skip


def print_round_ratios(runs: Rounds) -> None:
    """Each target's ratio round by round, and the median of those: the rounds ran side by
    side, so each round's ratio saw one state of the machine."""
    ours = "ours [shipped]"
    print("\ntargets: ours under the shipped server against each, requests/s round by round")
    print("(and server CPU per request, theirs over ours: above 1, we spend less); medians")
    for endpoint, others in GOALS.items():
        for other, goal in others:
            label = other if "[" in other else f"{other} [shipped]"
            mine, theirs = runs[(ours, endpoint)], runs[(label, endpoint)]
            speeds = [m.rps / t.rps for m, t in zip(mine, theirs, strict=True)]
            cpus = [t.server_us / m.server_us for m, t in zip(mine, theirs, strict=True)]
            speed = statistics.median(speeds)
            verdict = "met" if speed >= goal else "MISSED"
            print(
                f"  {endpoint + ': ours / ' + label:<52} {speed:5.2f}x"
                f" (rounds {', '.join(f'{r:.2f}' for r in speeds)})"
                f"  CPU {statistics.median(cpus):5.2f}x  >= {goal}: {verdict}"
            )


def print_against(runs: Rounds, earlier: str) -> None:
    """Ours here against ours at an earlier revision: server CPU per request and requests/s,
    here over there, round by round and their medians."""
    print(f"\nours here / {earlier}, round by round (CPU: ours here over it; below 1, less)")
    for endpoint in (GET_ONE, POST):
        here, there = runs[("ours [shipped]", endpoint)], runs[(earlier, endpoint)]
        cpus = [h.server_us / t.server_us for h, t in zip(here, there, strict=True)]
        speeds = [h.rps / t.rps for h, t in zip(here, there, strict=True)]
        print(
            f"  {endpoint:<20} server CPU {statistics.median(cpus):5.3f}x"
            f" (rounds {', '.join(f'{r:.3f}' for r in cpus)})"
            f"  requests/s {statistics.median(speeds):5.3f}x"
        )


def print_targets(results: list[Result], servers: list[str]) -> None:
    """Ours as served before, the async view against its sync twin, then every app under
    each of ``servers`` against the bare callable and the no-op view (ratios of medians)."""
    by = {(r.variant, r.endpoint): r for r in results}
    shipped = "shipped"

    def ratio(ours: str, other: str, endpoint: str, goal: float | None) -> None:
        mine, theirs = by[(ours, endpoint)], by[(other, endpoint)]
        speed, cpu = mine.rps / theirs.rps, theirs.server_us / mine.server_us
        verdict = "" if goal is None else f"  >= {goal}: " + ("met" if speed >= goal else "MISSED")
        name = f"{endpoint}: {ours.split(' [', maxsplit=1)[0]} / {other}"
        print(f"  {name:<52} {speed:5.2f}x  (CPU {cpu:5.2f}x){verdict}")

    ours = f"ours [{shipped}]"
    print("\nratios of medians:")
    ratio(ours, f"ours at {FILED} [gunicorn]", GET_ONE, 1.6)
    ratio(ours, "ours as served before [gunicorn]", GET_ONE, None)  # the server's share alone
    for runner in ("no-op flask", "no-op asgiref"):
        key = f"{runner} [{shipped}]"
        speed = by[(key, "async")].rps / by[(key, "sync")].rps
        met = "met" if speed >= 0.9 else "MISSED"
        verdict = f"  >= 0.9: {met}" if runner == "no-op flask" else ""
        print(f"  {'async / sync view, ' + key:<52} {speed:5.2f}x{verdict}")

    print("\nevery app under every server, against the bare callable and the no-op view")
    for server in servers:
        floor = by[(f"no-op flask [{server}]", "sync")]
        for endpoint in APP_ENDPOINTS:
            bare = by[(f"bare-wsgi [{server}]", endpoint)]
            for app_name in ("ours", "tutorial"):
                mine = by[(f"{app_name} [{server}]", endpoint)]
                line = f"  {server:<13} {endpoint:<20} {app_name:<8} / bare"
                line += f" {mine.rps / bare.rps:5.2f}x"
                if endpoint == GET_ONE:
                    line += f"   / no-op view {mine.rps / floor.rps:5.2f}x"
                print(line)


def main() -> None:
    """Run every variant and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument("--connections", type=int, default=16)
    shipped = Settings()  # the shipped server's defaults on this machine
    parser.add_argument(
        "--workers", type=int, default=shipped.WEB_CONCURRENCY, help="processes, every server"
    )
    parser.add_argument(
        "--threads", type=int, default=shipped.WEB_THREADS, help="app threads in each"
    )
    parser.add_argument(
        "--servers", default="gunicorn,shipped", help=f"WSGI servers, of {SERVERS[:3]}"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="only ours, the tutorial's app and the bare callable (shipped) and the peers",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="with --peers: also ours at REV under the shipped server (GET by id and POST)",
    )
    parser.add_argument(
        "--sweep",
        help="instead: ours under the shipped server at each PROCESSESxTHREADS, e.g. 2x4,4x2",
    )
    args = parser.parse_args()
    url, token, first_id = prepare_database()
    if args.sweep:
        sizes = [tuple(int(n) for n in size.split("x")) for size in args.sweep.split(",")]
        sweep = [
            Variant(f"ours {w}x{t}", "shipped", OURS, APP_ENDPOINTS, sizing=(w, t))
            for w, t in sizes
        ]
        print(f"sweep, wrk 2 threads x {args.connections} connections, medians of {args.rounds}")
        measure(sweep, args, url, token, first_id)
        return
    servers = args.servers.split(",")
    load_at_start = os.getloadavg()[0]
    print(
        f"{args.workers} processes x {args.threads} threads, wrk 2 threads x "
        f"{args.connections} connections, {args.rounds} rounds of {args.duration} s; medians;"
        " CPU per request under load: the server's processes, PostgreSQL (this database), wrk;"
        f" load average at start {load_at_start:.2f}"
    )
    if args.peers:
        with contextlib.ExitStack() as stack:
            variants = plan_peers()
            if args.against:
                tree = stack.enter_context(checkout(args.against))
                # The earlier code on this database (migrated by ours here): for a change
                # whose cost is the question, its CPU per request against ours.
                variants.append(
                    Variant(f"ours at {args.against}", "shipped", OURS, [GET_ONE, POST], tree=tree)
                )
            results, runs = measure(variants, args, url, token, first_id)
        if args.against:
            print_against(runs, f"ours at {args.against} [shipped]")
    else:
        with checkout(FILED) as filed:
            results, runs = measure(plan(servers, filed), args, url, token, first_id)
    print_round_ratios(runs)
    if not args.peers:
        print_targets(results, servers)
    print(f"\nload average at start {load_at_start:.2f}, at end {os.getloadavg()[0]:.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "http.json").write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
