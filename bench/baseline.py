"""The tutorial's "Performance Baseline (1000 records)": CRUD through HTTP, ours and its app.

For each backend, a fresh database per round (our migrations, and the tutorial's table as
its create_all makes it), then ours and the tutorial's app in turn under the shipped server,
same processes and threads, on loopback: create N users (a POST each), list them all (ours:
GET /users?limit=100 following next_cursor; the tutorial: GET /users?limit=N, its one
page), get each, update each (ours PATCH, the tutorial PUT), delete each. One keep-alive
httpx.Client, one request at a time, as a tutorial reader would measure it. Rounds
interleave the two apps; figures are medians of the rounds.

Usage: .venv/bin/python -m bench.baseline [--backends sqlite,postgresql,mysql]
       [--records 1000] [--rounds 3] [--budget 900]
PostgreSQL: BENCH_POSTGRES_URL (bench.run's; default postgres@127.0.0.1:5432). MySQL or
MariaDB: BENCH_MYSQL_URL (default root@127.0.0.1:3306, PyMySQL). Databases are this run's
own (app_baseline), dropped at the end; the servers are stopped by pid.
"""

import argparse
import functools
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Integer, MetaData, Table, create_engine, text
from sqlalchemy.engine import make_url

from app.config import Settings
from bench.import_bench import migrated_with_key
from bench.run import OURS, create_tutorial_table, fresh_database, serve, server_env

BACKENDS = ("sqlite", "postgresql", "mysql")
MYSQL_ADMIN_URL = os.environ.get(
    "BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"
)
DB_NAME = "app_baseline"  # not bench.run's app_bench: both may run on one server
APPS = ("ours", "tutorial")
# The tutorial's app with the PUT and DELETE views of the tutorial itself (tutorial_app).
TARGETS = {"ours": OURS, "tutorial": "bench.baseline:tutorial_app"}
OPERATIONS = ("create", "list", "get", "update", "delete")
# Not an operation: the HTTP path alone (a 404, no database), client and server, as a
# reference for the per-request figures above it; not in "all".
FLOOR, FLOOR_REQUESTS = "floor: a 404", 200
PAGE = 100  # ours: the largest page GET /users serves
TIMEOUT = httpx.Timeout(10.0)  # any one request; a stuck one fails the run, not hangs it


# --- The tutorial's writes -------------------------------------------------------------
# bench/apps/tutorial.py has the tutorial's POST and GETs only. Its PUT and DELETE are the
# tutorial's own (seeds/001), added here to the same app when a server imports
# ``bench.baseline:tutorial_app``; the tutorial's routes read ``/users/<int:user_id>``.


def _tutorial_update(user_id: int) -> ResponseReturnValue:
    """The tutorial's PUT /users/<id>: set the fields given, commit."""
    from bench.apps.tutorial import User, db  # noqa: PLC0415  (needs DATABASE_URL set)

    user = User.query.get(user_id)
    if not user:
        return jsonify({"message": "User not found"}), 404
    data = request.get_json()
    if not data:
        return jsonify({"message": "No data provided for update"}), 400
    try:
        if "username" in data:
            user.username = data["username"]
        if "email" in data:
            user.email = data["email"]
        db.session.commit()
        return jsonify({"message": "User updated", "user": user.to_dict()}), 200
    except Exception as error:  # the tutorial's catch-all, as written
        db.session.rollback()
        return jsonify({"message": "Failed to update user", "error": str(error)}), 500


def _tutorial_delete(user_id: int) -> ResponseReturnValue:
    """The tutorial's DELETE /users/<id>: delete the row, commit."""
    from bench.apps.tutorial import User, db  # noqa: PLC0415

    user = User.query.get(user_id)
    if not user:
        return jsonify({"message": "User not found"}), 404
    try:
        db.session.delete(user)
        db.session.commit()
        return jsonify({"message": "User deleted"}), 204
    except Exception as error:
        db.session.rollback()
        return jsonify({"message": "Failed to delete user", "error": str(error)}), 500


@functools.cache
def _tutorial_with_writes() -> Flask:
    """The tutorial's app with its PUT and DELETE views (once per process)."""
    from bench.apps.tutorial import app  # noqa: PLC0415

    rule = "/users/<int:user_id>"
    app.add_url_rule(rule, "update_user", _tutorial_update, methods=["PUT"])
    app.add_url_rule(rule, "delete_user", _tutorial_delete, methods=["DELETE"])
    return app


def __getattr__(name: str) -> Flask:
    """``tutorial_app`` on first use: importing this module must not need DATABASE_URL."""
    if name == "tutorial_app":
        return _tutorial_with_writes()
    raise AttributeError(name)


# --- Databases ---------------------------------------------------------------------------


def mysql_database(name: str) -> str:
    """Drop and create an empty MySQL/MariaDB database; return its URL (PyMySQL, utf8mb4)."""
    admin = create_engine(MYSQL_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    admin.dispose()
    return make_url(MYSQL_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(backend: str, name: str) -> None:
    """Drop this run's server database (SQLite's file goes with its temporary folder)."""
    if backend == "postgresql":
        from bench.run import ADMIN_URL  # noqa: PLC0415

        admin, statement = ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    elif backend == "mysql":
        admin, statement = MYSQL_ADMIN_URL, f"DROP DATABASE IF EXISTS `{name}`"
    else:
        return
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def _tutorial_table(url: str) -> Table:
    """The tutorial model's table (its module reads DATABASE_URL when first imported)."""
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        from bench.apps.tutorial import User as TutorialUser  # noqa: PLC0415
    finally:
        _restore("DATABASE_URL", previous)
    table: Table = TutorialUser.__table__
    return table


def _restore(name: str, value: str | None) -> None:
    """Put an environment variable back as it was (absent included)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _make_tutorial_table(backend: str, url: str) -> None:
    """The tutorial's table, empty, as its db.create_all() makes it on ``backend``.

    bench.run.create_tutorial_table is PostgreSQL's (it resets the id sequence with
    setval); elsewhere the table is made here, with nothing to copy: ours is empty too.
    """
    if backend == "postgresql":
        previous = os.environ.get("DATABASE_URL")
        try:
            create_tutorial_table(url)  # it sets DATABASE_URL in this process
        finally:
            _restore("DATABASE_URL", previous)
        return
    table = _tutorial_table(url)
    if backend == "sqlite":
        # bench's model says BigInteger (ours' id range); on SQLite only INTEGER PRIMARY KEY
        # generates ids, and the tutorial's own model says db.Integer: made as the tutorial.
        table = table.to_metadata(MetaData())
        table.c.id.type = Integer()
    engine = create_engine(url)
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    engine.dispose()


def prepare(backend: str, folder: Path) -> tuple[str, str]:
    """A fresh, empty database at our head with the tutorial's table; return URL and key.

    bench.run.prepare_database, less its 1,000 seeded users, for any backend.
    """
    if backend == "sqlite":
        path = folder / "baseline.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    elif backend == "postgresql":
        url = fresh_database(DB_NAME)
    else:
        url = mysql_database(DB_NAME)
    token = migrated_with_key(url)
    _make_tutorial_table(backend, url)
    return url, token


# --- The client's side -------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """One operation of one round: requests sent and the milliseconds they took."""

    requests: int
    ms: float


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    """The response, if its status is the one the operation succeeds with."""
    if response.status_code != status:
        detail = response.text[:300]
        msg = f"{response.request.method} {response.request.url}: {response.status_code} {detail}"
        raise RuntimeError(msg)
    return response


def _timed(run: Callable[[], int]) -> Timing:
    """Time ``run``, which returns how many requests it sent."""
    start = time.perf_counter()
    count = run()
    return Timing(count, (time.perf_counter() - start) * 1000)


def crud(client: httpx.Client, app: str, records: int) -> dict[str, Timing]:
    """Create, list, get, update and delete ``records`` users; return each step's timing."""
    ours = app == "ours"
    ids: list[int] = []

    def create() -> int:
        for n in range(records):
            body = {"username": f"user{n}", "email": f"user{n}@example.com"}
            made = _expect(client.post("/users", json=body), 201).json()
            ids.append(int(made["id"] if ours else made["user"]["id"]))
        return records

    listed: list[int] = []

    def list_all() -> int:
        if not ours:
            # Its one page: the tutorial's GET /users returns every row; bench's copy takes
            # a limit (default 50), given here as the whole table.
            page = _expect(client.get("/users", params={"limit": records}), 200).json()
            listed.extend(int(user["id"]) for user in page)
            return 1
        sent, params = 0, {"limit": str(PAGE)}
        while True:
            page = _expect(client.get("/users", params=params), 200).json()
            sent += 1
            listed.extend(int(user["id"]) for user in page["items"])
            if page["next_cursor"] is None:
                return sent
            params = {"limit": str(PAGE), "cursor": page["next_cursor"]}

    def get_each() -> int:
        for user_id in ids:
            _expect(client.get(f"/users/{user_id}"), 200)
        return len(ids)

    def update_each() -> int:
        send = client.patch if ours else client.put
        for n, user_id in enumerate(ids):
            _expect(send(f"/users/{user_id}", json={"email": f"user{n}.b@example.com"}), 200)
        return len(ids)

    def delete_each() -> int:
        for user_id in ids:
            _expect(client.delete(f"/users/{user_id}"), 204)
        return len(ids)

    steps = (create, list_all, get_each, update_each, delete_each)
    timings = {}
    for name, step in zip(OPERATIONS, steps, strict=True):
        timings[name] = _timed(step)
        if name == "list" and sorted(listed) != sorted(ids):
            msg = f"{app}: listed {len(listed)} users, created {len(ids)}"
            raise RuntimeError(msg)
    return timings


def run_app(
    app: str, url: str, token: str, records: int, sizing: tuple[int, int]
) -> dict[str, Timing]:
    """Serve one app on ``url``'s database under the shipped server and time its CRUD."""
    # Ours refuses requests without a key; the tutorial ignores the header.
    headers = {"Authorization": f"Bearer {token}"}
    with (
        serve("shipped", TARGETS[app], server_env(url), sizing) as (base, _pid),
        httpx.Client(base_url=base, headers=headers, timeout=TIMEOUT) as client,
    ):
        # Not counted: the worker's first request (imports, the pool's first connection).
        client.get("/users", params={"limit": 1})
        timings = crud(client, app, records)

        def floor() -> int:
            for _ in range(FLOOR_REQUESTS):
                _expect(client.get("/baseline-floor"), 404)
            return FLOOR_REQUESTS

        timings[FLOOR] = _timed(floor)
        return timings


# --- Tables ------------------------------------------------------------------------------

Medians = dict[tuple[str, str], Timing]  # (app, operation) -> the rounds' median


def medians(rounds: list[dict[str, dict[str, Timing]]]) -> Medians:
    """Each app's and operation's median over the rounds (requests are the same in each)."""
    return {
        (app, op): Timing(
            rounds[0][app][op].requests, statistics.median(r[app][op].ms for r in rounds)
        )
        for app in APPS
        for op in (*OPERATIONS, FLOOR)
    }


def print_backend(backend: str, figures: Medians, records: int, rounds: int) -> None:
    """One backend's Markdown table: per operation, each app's total and per request."""
    print(f"\n### {backend}: {records} records, medians of {rounds} rounds\n")
    print(
        "| operation | requests (ours / tutorial) | ours total ms | ours ms/req"
        " | tutorial total ms | tutorial ms/req | tutorial / ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for op in (*OPERATIONS, "all", FLOOR):
        mine, theirs = _row(figures, op)
        print(
            f"| {op} | {mine.requests} / {theirs.requests} | {mine.ms:.0f}"
            f" | {mine.ms / mine.requests:.3f} | {theirs.ms:.0f}"
            f" | {theirs.ms / theirs.requests:.3f} | {theirs.ms / mine.ms:.2f} |"
        )


def _row(figures: Medians, op: str) -> tuple[Timing, Timing]:
    """Ours and the tutorial's timing of one operation, or of all of them summed."""
    ops = OPERATIONS if op == "all" else (op,)
    pair = []
    for app in APPS:
        done = [figures[(app, name)] for name in ops]
        pair.append(Timing(sum(t.requests for t in done), sum(t.ms for t in done)))
    return pair[0], pair[1]


def print_summary(results: dict[str, Medians | str]) -> None:
    """Every backend in one table: tutorial / ours per operation (ratio of total times)."""
    print("\n### summary: tutorial / ours, total time per operation (>1: ours faster)\n")
    print(f"| backend | {' | '.join(OPERATIONS)} | all (ours ms / tutorial ms) | all |")
    print(f"|---|{'---:|' * len(OPERATIONS)}---:|---:|")
    for backend, figures in results.items():
        if isinstance(figures, str):
            print(f"| {backend} | {' | '.join('-' for _ in OPERATIONS)} | {figures} | - |")
            continue
        ratios = []
        for op in OPERATIONS:
            mine, theirs = _row(figures, op)
            ratios.append(f"{theirs.ms / mine.ms:.2f}")
        mine, theirs = _row(figures, "all")
        print(
            f"| {backend} | {' | '.join(ratios)} | {mine.ms:.0f} / {theirs.ms:.0f}"
            f" | {theirs.ms / mine.ms:.2f} |"
        )


# --- The run -----------------------------------------------------------------------------


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread after ``seconds``: the run is bounded, and
    the servers are stopped by serve()'s own cleanup as the error passes through it."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        msg = f"the run took more than {seconds} s (--budget)"
        raise TimeoutError(msg)

    previous: Any = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def measure(
    backend: str, args: argparse.Namespace, sizing: tuple[int, int], folder: Path
) -> Medians:
    """Every round of one backend, ours and the tutorial's in turn; return the medians."""
    rounds: list[dict[str, dict[str, Timing]]] = []
    try:
        for number in range(1, args.rounds + 1):
            # A fresh database per round: each app starts from an empty table of its own.
            url, token = prepare(backend, folder)
            done = {app: run_app(app, url, token, args.records, sizing) for app in APPS}
            rounds.append(done)
            totals = ", ".join(
                f"{app} {sum(done[app][op].ms for op in OPERATIONS):.0f} ms" for app in APPS
            )
            print(f"{backend} round {number} of {args.rounds}: {totals}", flush=True)
    finally:
        drop_database(backend, DB_NAME)
    return medians(rounds)


def main() -> None:
    """Run every backend asked for and print its table, then the summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"of {BACKENDS}")
    parser.add_argument("--records", type=int, default=1000, help="users per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument("--budget", type=int, default=900, help="seconds for the whole run")
    args = parser.parse_args()
    backends = args.backends.split(",")
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    shipped = Settings()  # the shipped server's sizing on this machine, for both apps
    sizing = (shipped.WEB_CONCURRENCY, shipped.WEB_THREADS)
    print(
        f"shipped server, {sizing[0]} processes x {sizing[1]} threads each; one keep-alive"
        f" client, sequential; {args.records} records, {args.rounds} rounds, medians"
    )
    results: dict[str, Medians | str] = {}
    with deadline(args.budget), tempfile.TemporaryDirectory(prefix="baseline-") as folder:
        for backend in backends:
            try:
                figures = measure(backend, args, sizing, Path(folder))
            except TimeoutError:
                raise  # the budget is the whole run's: no backend starts after it
            except Exception as error:
                # One backend failing (ours not serving it yet, say) leaves the others' run.
                first = (str(error).splitlines() or [type(error).__name__])[0]
                results[backend] = f"failed: {first[:120]}"
                print(f"{backend}: {results[backend]}", flush=True)
                continue
            results[backend] = figures
            print_backend(backend, figures, args.records, args.rounds)
    print_summary(results)


if __name__ == "__main__":
    main()
