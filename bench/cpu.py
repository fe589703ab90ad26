"""CPU per request, in process: our service, the tutorial's app and the bare-WSGI ceiling.

Each WSGI callable is called directly (no HTTP server, no network to the client), one
request at a time, on PostgreSQL; the figure is this process's CPU time per request, which
a shared machine disturbs far less than requests/s. ``--profile`` prints where ours spends
it. ``--credentials`` compares, in the same rounds, ours answering GET /users/{id} with an
API key and with a signed-in user's access token (issue 34: within 5% of CPU).
Usage: .venv/bin/python -m bench.cpu [--requests 2000] [--profile get_one | --credentials]
"""

import argparse
import cProfile
import importlib
import io
import itertools
import json
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from bench.run import UNREACHED_LIMIT, USERS, prepare_database

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
    for environ in itertools.islice(requests, 200):
        call(app, environ)
    start = time.process_time()
    for environ in itertools.islice(requests, count):
        status = call(app, environ)
        if not status.startswith("2"):
            raise RuntimeError(f"{environ['PATH_INFO']}: {status}")
    return (time.process_time() - start) / count * 1e6


def load(name: str) -> WSGIApp:
    """Build one variant's WSGI callable (the database URL comes from the environment)."""
    if name == "ours":
        from app import create_app  # noqa: PLC0415 - built after DATABASE_URL is set
        from app.config import Settings  # noqa: PLC0415

        return create_app(Settings(RATE_LIMIT=UNREACHED_LIMIT))
    module = importlib.import_module(f"bench.apps.{name}")
    return module.app  # type: ignore[no-any-return]


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
    parser.add_argument("--profile", choices=["get_one", "list", "post"])
    parser.add_argument("--credentials", action="store_true")
    args = parser.parse_args()
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
