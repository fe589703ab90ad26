"""HTTP benchmark on PostgreSQL: our service against the tutorial's app and a bare-WSGI
ceiling, plus a trivial async view against its sync twin. One run, side by side.

Needs wrk (Debian: apt-get install wrk) and PostgreSQL. Loopback only; every load is
bounded in time. Usage: .venv/bin/python -m bench.run [--duration 10] [--connections 16]
"""

import argparse
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
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Settings
from app.db.session import db
from app.models import User
from app.services.api_keys import ALL_SCOPES, create_api_key

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DB_NAME = "app_bench"
USERS = 1000
CHILDREN = resource.RUSAGE_CHILDREN
GUNICORN = ["--workers", "2", "--worker-class", "gthread", "--threads", "4", "--no-control-socket"]


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


def fresh_database(name: str) -> str:
    """Drop and create an empty database; return its URL."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


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


def prepare_database(name: str = DB_NAME) -> tuple[str, str, int]:
    """Make a fresh database at head with 1,000 users (ours and the tutorial's); return its
    URL, a key, the first id."""
    url = fresh_database(name)
    app = create_app(Settings(DATABASE_URL=url, AUTO_MIGRATE=True, LOG_LEVEL="WARNING"))
    with app.app_context():
        rows = [{"username": f"seed{n}", "email": f"seed{n}@example.com"} for n in range(USERS)]
        db.session.execute(insert(User), rows)
        _, token = create_api_key("bench", list(ALL_SCOPES))
        db.session.commit()
        first = db.session.execute(text("SELECT min(id) FROM user_account")).scalar_one()
        for engine in db.engines.values():
            engine.dispose()
    create_tutorial_table(url)
    return url, token, int(first)


@contextmanager
def gunicorn(target: str, env: dict[str, str], probe: str) -> Iterator[str]:
    """Serve a WSGI target with the same gunicorn settings as every other variant."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="bench-")) / "gunicorn.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *GUNICORN, target],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + probe, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{target} did not start; see {log}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def server_pids(base: str) -> list[int]:
    """The gunicorn master and workers serving ``base`` (their command lines name its port)."""
    port = base.rsplit(":", 1)[1]
    out = subprocess.run(
        ["pgrep", "-f", f"127.0.0.1:{port}"], check=True, capture_output=True, text=True
    )
    return sorted(int(pid) for pid in out.stdout.split())


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


def _cpu_seconds(pids: list[int]) -> float:
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
    base: str, request: tuple[str, str], duration: int, connections: int, database: str
) -> tuple[float, float, float, int, float, float, float]:
    """Run wrk for a bounded time; return requests/s, p50 ms, p99 ms, non-2xx count, and
    the CPU microseconds per request of the server's processes, PostgreSQL's and wrk's.
    ``request`` is the path and the Lua script that makes each request.

    Requests/s on a shared two-core machine swing with whatever else runs; CPU per request
    under load says where the time goes, and moves far less.
    """
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
    servers, databases = server_pids(base), _postgres_pids(database)
    # wrk is this process's only child that ends during the run: RUSAGE_CHILDREN is its CPU.
    before = (_cpu_seconds(servers), _cpu_seconds(databases), resource.getrusage(CHILDREN))
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=duration + 60
    ).stdout
    after = (_cpu_seconds(servers), _cpu_seconds(databases), resource.getrusage(CHILDREN))
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


def main() -> None:
    """Run every variant and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    url, token, first_id = prepare_database()
    env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    get_one, get_list, post = "GET /users/{id}", "GET /users?limit=100", "POST /users"
    plan = [
        ("ours", "app:create_app()", {}, "/healthz", [get_one, get_list, post]),
        ("tutorial", "bench.apps.tutorial:app", {}, "/users/1", [get_one, get_list, post]),
        ("bare-wsgi", "bench.apps.bare:app", {}, "/users/1", [get_one, get_list, post]),
        (
            "trivial/our-loop",
            "bench.apps.trivial:app",
            {"TRIVIAL_RUNNER": "ours"},
            "/sync",
            ["sync", "async"],
        ),
        (
            "trivial/asgiref",
            "bench.apps.trivial:app",
            {"TRIVIAL_RUNNER": "asgiref"},
            "/sync",
            ["sync", "async"],
        ),
    ]
    scripts = {
        get_one: ("/users/1", "get_one"),
        get_list: ("/users?limit=100", "plain"),
        post: ("/users", "post"),
        "sync": ("/sync", "plain"),
        "async": ("/async", "plain"),
    }
    # Rounds interleave the variants, and medians are reported: a shared two-core machine
    # drifts, and a single run per variant would measure the drift.
    runs: dict[tuple[str, str], list[Result]] = {}
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number} of {args.rounds}", flush=True)
        for variant, target, extra, probe, endpoints in plan:
            # A pair compared by ratio (sync and async) alternates a few times inside one
            # server, so a burst of noise on the machine hits both sides alike.
            repeats = 3 if endpoints == ["sync", "async"] else 1
            with gunicorn(target, {**env, **extra}, probe) as base:
                for endpoint in endpoints * repeats:
                    path, kind = scripts[endpoint]
                    load = (path, _lua(kind, token, first_id))
                    wrk(base, load, 1, args.connections, url)  # warm-up, not counted
                    figures = wrk(base, load, args.duration, args.connections, url)
                    runs.setdefault((variant, endpoint), []).append(
                        Result(variant, endpoint, *figures)
                    )
    results: list[Result] = []
    print("\nmedians; CPU per request under load: gunicorn, PostgreSQL (this database), wrk")
    for (variant, endpoint), done in runs.items():
        rps, p50, p99, server, postgres, client = (
            statistics.median(getattr(r, name) for r in done)
            for name in ("rps", "p50_ms", "p99_ms", "server_us", "postgres_us", "client_us")
        )
        bad = sum(r.non_2xx for r in done)
        result = Result(variant, endpoint, rps, p50, p99, bad, server, postgres, client)
        results.append(result)
        spread = ", ".join(f"{r.rps:.0f}" for r in done)
        print(
            f"{variant:<18} {endpoint:<22} {result.rps:>7.0f} req/s  p50 {result.p50_ms:6.2f} ms"
            f"  p99 {result.p99_ms:6.2f} ms  cpu {result.server_us:5.0f} / "
            f"{result.postgres_us:4.0f} / {result.client_us:3.0f} us  non-2xx {bad}"
            f"  (runs: {spread})",
            flush=True,
        )

    by = {(r.variant, r.endpoint): r.rps for r in results}
    tutorial_get = by[("tutorial", get_one)]
    print("\nratios (requests/s)")
    ratios = [
        (
            "trivial async / sync, our loop",
            by[("trivial/our-loop", "async")] / by[("trivial/our-loop", "sync")],
            0.85,
        ),
        (
            "trivial async / sync, asgiref",
            by[("trivial/asgiref", "async")] / by[("trivial/asgiref", "sync")],
            None,
        ),
        ("GET by id: ours / tutorial", by[("ours", get_one)] / tutorial_get, 2.5),
        ("GET by id: ours / bare WSGI", by[("ours", get_one)] / by[("bare-wsgi", get_one)], 0.5),
        ("GET list: ours / tutorial", by[("ours", get_list)] / by[("tutorial", get_list)], None),
        ("GET list: ours / bare WSGI", by[("ours", get_list)] / by[("bare-wsgi", get_list)], None),
        ("POST: ours / tutorial", by[("ours", post)] / by[("tutorial", post)], 3.0),
        ("POST: ours / bare WSGI", by[("ours", post)] / by[("bare-wsgi", post)], None),
    ]
    for name, value, goal in ratios:
        verdict = (
            ""
            if goal is None
            else (f"  target >= {goal}: " + ("met" if value >= goal else "MISSED"))
        )
        print(f"  {name:<34} {value:6.2f}x{verdict}")
    # What bounds "GET by id: ours / tutorial" from above: no Flask app beats a Flask view
    # that does nothing, and no app at all beats the bare callable's one round trip.
    print("\nceilings for GET by id / tutorial, same server settings")
    for name, key in (
        ("no-op Flask sync view / tutorial", ("trivial/asgiref", "sync")),
        ("bare WSGI / tutorial", ("bare-wsgi", get_one)),
    ):
        print(f"  {name:<34} {by[key] / tutorial_get:6.2f}x")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "http.json").write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
