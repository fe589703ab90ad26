"""CPU per request, in process: our service, the tutorial's app and the bare-WSGI ceiling.

Each WSGI callable is called directly (no HTTP server, no network to the client), one
request at a time, on PostgreSQL; the figure is this process's CPU time per request, which
a shared machine disturbs far less than requests/s. ``--profile`` prints where ours spends
it. Usage: .venv/bin/python -m bench.cpu [--requests 2000] [--profile get_one]

``--against REV`` measures ours at REV (a checkout in /tmp) beside ours here instead, each in
its own process on its own database, rounds interleaved; with ``--instructions`` it counts
instead the instructions per request under valgrind (callgrind), which another process on the
machine does not change at all: .venv/bin/python -m bench.cpu --against a938339 --instructions;
``--calls N`` counts the Python function calls (and calls of C functions) per request over N
requests (sys.setprofile), which nothing outside the process moves at all.

``--credentials`` compares, in the same rounds, ours answering GET /users/{id} with an
API key and with a signed-in user's access token (issue 34: within 5% of CPU):
.venv/bin/python -m bench.cpu --credentials
"""

import argparse
import cProfile
import importlib
import io
import itertools
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

# Run as a script (python bench/cpu.py --worker), this file's folder is first on sys.path and
# ``bench`` is the PYTHONPATH's: the checkout measured, whose own prepare_database makes a
# database its schema fits.
from bench.baseline import drop_database
from bench.run import UNREACHED_LIMIT, USERS, checkout, prepare_database

# bench.run's, read here too: a worker may import an older checkout's bench.run without it.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _environ(method: str, path: str, token: str, body: bytes = b"") -> dict[str, Any]:
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _requests(kind: str, token: str, first_id: int, tag: str) -> Iterator[dict[str, Any]]:
    for n in itertools.count():
        if kind == "get_one":
            yield _environ("GET", f"/users/{first_id + n % USERS}", token)
        elif kind == "list":
            yield _environ("GET", "/users?limit=100", token)
        else:
            name = f"cpu{tag}-{n}"
            body = json.dumps({"username": name, "email": f"{name}@example.com"}).encode()
            yield _environ("POST", "/users", token, body)


def call(app: WSGIApp, environ: dict[str, Any]) -> str:
    """Make one WSGI call, consume the body, return the status line."""
    status: list[str] = []

    def start_response(line: str, _headers: Any, _exc: Any = None) -> None:
        status.append(line)

    body = app(environ, start_response)
    for _ in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return status[0]


def cpu_per_request(app: WSGIApp, requests: Iterator[dict[str, Any]], count: int) -> float:
    """Return CPU microseconds per request after a warm-up; fail on any non-2xx."""
    for environ in itertools.islice(requests, WARM_UP):
        call(app, environ)
    start = time.process_time()
    for environ in itertools.islice(requests, count):
        status = call(app, environ)
        if not status.startswith("2"):
            raise RuntimeError(f"{environ['PATH_INFO']}: {status}")
    return (time.process_time() - start) / count * 1e6


def calls_per_request(
    app: WSGIApp, requests: Iterator[dict[str, Any]], count: int
) -> tuple[float, float]:
    """Return the Python and C function calls per request after a warm-up."""
    for environ in itertools.islice(requests, WARM_UP):
        call(app, environ)
    batch = list(itertools.islice(requests, count))
    counts = {"call": 0, "c_call": 0}

    def count_call(_frame: Any, event: str, _arg: Any) -> None:
        if event in counts:
            counts[event] += 1

    sys.setprofile(count_call)
    try:
        for environ in batch:
            call(app, environ)
    finally:
        sys.setprofile(None)
    return counts["call"] / count, counts["c_call"] / count


def load(name: str) -> WSGIApp:
    """Build one variant's WSGI callable (the database URL comes from the environment)."""
    if name == "ours":
        from app import create_app  # noqa: PLC0415 - built after DATABASE_URL is set
        from app.config import Settings  # noqa: PLC0415

        return create_app(Settings(RATE_LIMIT=UNREACHED_LIMIT))
    module = importlib.import_module(f"bench.apps.{name}")
    return module.app  # type: ignore[no-any-return]


KINDS = ("get_one", "list", "post")
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
WARM_UP = 200
# callgrind zeroes its counts where the measured requests begin (os.getppid) and writes them
# out where they end (os.getpgrp): calls nothing else in a request makes.
_CALLGRIND = ["--zero-before=os_getppid", "--dump-before=os_getpgrp"]


def _worker(database: str, backend: str) -> None:
    """Serve measurements to the parent: make the database, then answer each line
    "KIND COUNT" with the CPU and the wall-clock microseconds per request ("calls KIND
    COUNT": the Python and C calls per request)."""
    url, token, first_id = prepare_database(database, backend)
    os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING")
    app = load("ours")
    print(json.dumps({"url": url, "token": token, "first_id": first_id}), flush=True)
    for line in sys.stdin:
        *calls, kind, count = line.split()
        requests = _requests(kind, token, first_id, uuid.uuid4().hex[:8])
        if calls:
            python, c = calls_per_request(app, requests, int(count))
            print(f"{python:.1f} {c:.1f}", flush=True)
            continue
        started = time.perf_counter()
        cpu = cpu_per_request(app, requests, int(count))
        # The wall clock holds what CPU does not: the round trips' waits (and the warm-up).
        wall = (time.perf_counter() - started) / (int(count) + WARM_UP) * 1e6
        print(f"{cpu:.1f} {wall:.1f}", flush=True)


def _counted(kind: str, count: int) -> None:
    """Under callgrind: warm up, then make ``count`` requests between the two markers."""
    token, first_id = os.environ["BENCH_TOKEN"], int(os.environ["BENCH_FIRST_ID"])
    app = load("ours")
    requests = _requests(kind, token, first_id, uuid.uuid4().hex[:8])
    for environ in itertools.islice(requests, WARM_UP):
        call(app, environ)
    batch = list(itertools.islice(requests, count))  # built outside the counted part
    os.getppid()
    for environ in batch:
        call(app, environ)
    os.getpgrp()


class Side:
    """One revision of ours in a worker process of its own, on its own database."""

    def __init__(self, name: str, tree: Path, backend: str) -> None:
        self.name, self.tree, self.backend = name, tree, backend
        # The prefix is put on here, not by the worker: an older checkout's bench.run may
        # not know BENCH_DB_PREFIX.
        self.env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_DB_PREFIX": ""}
        database = self.name_of_database = f"{DB_PREFIX}app_bench_cpu_{name.replace('-', '_')}"
        self.process = subprocess.Popen(
            [sys.executable, str(HERE), "--worker", database, "--backend", backend],
            cwd=tree,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the worker has no pipes")
        self._in, self._out = stdin, stdout
        self.database = json.loads(self._out.readline())

    def cpu(self, kind: str, count: int) -> tuple[float, float]:
        """CPU and wall-clock microseconds per request of ``count`` requests of ``kind``."""
        self._in.write(f"{kind} {count}\n")
        self._in.flush()
        cpu, wall = self._out.readline().split()
        return float(cpu), float(wall)

    def calls(self, kind: str, count: int) -> tuple[float, float]:
        """Python and C function calls per request of ``count`` requests of ``kind``."""
        self._in.write(f"calls {kind} {count}\n")
        self._in.flush()
        python, c = self._out.readline().split()
        return float(python), float(c)

    def instructions(self, kind: str, count: int) -> float:
        """Instructions per request of ``count`` requests of ``kind``, under callgrind."""
        with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as folder:
            out = Path(folder) / "callgrind.out"
            command = [
                *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *_CALLGRIND),
                *(sys.executable, str(HERE), "--counted", kind, str(count)),
            ]
            env = {
                **self.env,
                "DATABASE_URL": self.database["url"],
                "LOG_LEVEL": "WARNING",
                "BENCH_TOKEN": self.database["token"],
                "BENCH_FIRST_ID": str(self.database["first_id"]),
            }
            subprocess.run(command, cwd=self.tree, env=env, check=True, capture_output=True)
            for dump in Path(folder).glob("callgrind.out*"):
                text = dump.read_text()
                if "Trigger: --dump-before=os_getpgrp" in text:
                    summary = next(ln for ln in text.splitlines() if ln.startswith("summary:"))
                    return int(summary.split()[1]) / count
        raise RuntimeError("callgrind wrote no dump of the measured requests")

    def close(self) -> None:
        """End the worker and drop its database."""
        self._in.close()
        self.process.wait(timeout=60)
        drop_database(self.backend, self.name_of_database)


def _compare(revision: str, args: argparse.Namespace) -> None:
    """Ours at ``revision`` against ours here, interleaved; per-round ratios and medians."""
    kinds = args.kinds.split(",")
    load_at_start = os.getloadavg()
    with checkout(revision) as tree:
        sides = [Side(revision, tree, args.backend), Side("here", ROOT, args.backend)]
        try:
            runs: dict[tuple[str, str, str], list[float]] = {}
            for round_number in range(args.rounds):
                for kind in kinds:
                    for side in sides if round_number % 2 == 0 else sides[::-1]:
                        cpu, wall = side.cpu(kind, args.requests)
                        runs.setdefault(("cpu", kind, side.name), []).append(cpu)
                        runs.setdefault(("wall", kind, side.name), []).append(wall)
                        if args.calls and round_number == 0:
                            python, c = side.calls(kind, args.calls)
                            runs.setdefault(("python calls", kind, side.name), []).append(python)
                            runs.setdefault(("C calls", kind, side.name), []).append(c)
                        if args.instructions and round_number == 0:
                            # Counted once: the same requests run the same instructions.
                            runs.setdefault(("instructions", kind, side.name), []).append(
                                side.instructions(kind, args.instructions)
                            )
        finally:
            for side in sides:
                side.close()
    print(
        f"ours at {revision} against ours here on {args.backend}; load average at start "
        f"{load_at_start[0]:.2f},"
    )
    print(f"at end {os.getloadavg()[0]:.2f}; {args.rounds} rounds, interleaved")
    counted = ("python calls", "C calls") if args.calls else ()
    for what in ("cpu", "wall", *counted, *(("instructions",) if args.instructions else ())):
        unit = {"cpu": "us CPU", "wall": "us wall"}.get(what, what)
        for kind in kinds:
            before, after = runs[what, kind, revision], runs[what, kind, "here"]
            ratios = [a / b for a, b in zip(after, before, strict=True)]  # round by round
            print(
                f"{kind:<8} {unit:>12}/request: {revision} {min(before):11,.0f}"
                f"  here {min(after):11,.0f}  here/{revision} per round"
                f" {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}x"
            )


def access_token(app: Any) -> str:
    """Sign a reader in (a user in a group with users:read): their session's access token."""
    from app.db.session import db  # noqa: PLC0415 - imported with the app, after the URL
    from app.schemas.groups import GroupCreate  # noqa: PLC0415
    from app.schemas.users import UserCreate  # noqa: PLC0415
    from app.services import groups, sessions, users  # noqa: PLC0415

    with app.app_context():
        user = users.create_user(UserCreate(username="reader", email="reader@example.com"))
        group = groups.create_group(GroupCreate(name="readers", scopes=["users:read"]))
        groups.add_member(group.id, user.id)
        token = sessions.start_session(user.id, None).access_token
        db.session.commit()
    return token


def compare_credentials(app: WSGIApp, key: str, token: str, first_id: int, args: Any) -> None:
    """Print GET /users/{id}'s CPU per request with a key and with an access token."""
    runs: dict[str, list[float]] = {"API key": [], "access token": []}
    for _ in range(args.rounds):
        for name, credential in (("API key", key), ("access token", token)):
            requests = _requests("get_one", credential, first_id, "")
            runs[name].append(cpu_per_request(app, requests, args.requests))
    figures = {name: min(values) for name, values in runs.items()}
    for name, figure in figures.items():
        spread = ", ".join(f"{v:.0f}" for v in runs[name])
        print(f"GET /users/{{id}} {name:<13} {figure:7.0f} us CPU/request  (rounds: {spread})")
    ratio = figures["access token"] / figures["API key"]
    print(f"access token / API key {ratio:5.3f}x  ({(ratio - 1) * 100:+.1f}%)")


def main() -> None:
    """Print CPU per request for each variant and request, and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=KINDS)
    parser.add_argument("--against", metavar="REV", help="ours at REV against ours here")
    parser.add_argument(
        "--instructions",
        type=int,
        default=0,
        metavar="N",
        help="with --against: also count instructions over N requests under callgrind",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=0,
        metavar="N",
        help="with --against: also count Python and C function calls over N requests",
    )
    parser.add_argument("--kinds", default="get_one,post", help="with --against")
    parser.add_argument(
        "--backend",
        choices=("postgresql", "mysql", "sqlite"),
        default="postgresql",
        help="with --against",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--counted", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--credentials", action="store_true")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.backend)
        return
    if args.counted:
        _counted(args.counted[0], int(args.counted[1]))
        return
    if args.against:
        _compare(args.against, args)
        return
    url, token, first_id = prepare_database("app_bench_cpu")
    os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING")
    if args.credentials:
        served = load("ours")
        compare_credentials(served, token, access_token(served), first_id, args)
        return
    apps = {name: load(name) for name in ("ours", "tutorial", "bare")}
    if args.profile:
        requests = _requests(args.profile, token, first_id, "p")
        cpu_per_request(apps["ours"], requests, 200)
        # Timed by CPU, not wall clock: waits on PostgreSQL are not our cost.
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        cpu_per_request(apps["ours"], requests, args.requests)
        profiler.disable()
        stats = pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative"))
        stats.print_stats(int(os.environ.get("BENCH_LINES", "45")))
        return
    # Rounds interleave the variants; the least CPU a variant needed in any round is its
    # figure, since another process on the machine can only ever add to it.
    runs: dict[tuple[str, str], list[float]] = {}
    for round_number in range(args.rounds):
        for kind in ("get_one", "list", "post"):
            for name, app in apps.items():
                requests = _requests(kind, token, first_id, f"{name}{round_number}")
                runs.setdefault((name, kind), []).append(
                    cpu_per_request(app, requests, args.requests)
                )
    figures = {key: min(values) for key, values in runs.items()}
    for (name, kind), figure in figures.items():
        spread = ", ".join(f"{v:.0f}" for v in runs[name, kind])
        print(f"{name:<9} {kind:<8} {figure:7.0f} us CPU/request  (rounds: {spread})")
    for kind in ("get_one", "list", "post"):
        ours = figures["ours", kind]
        print(
            f"{kind:<8} tutorial/ours {figures['tutorial', kind] / ours:5.2f}x"
            f"   bare/ours {figures['bare', kind] / ours:5.2f}x"
        )


if __name__ == "__main__":
    main()
