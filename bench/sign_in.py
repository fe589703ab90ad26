"""Sign-in refusals side by side: unknown user, wrong password, no password, deactivated;
and, with ``--flood``, sign-in throughput and reads under a flood of wrong passwords.

Issue 34, point 3: the four get the same 401 body and must take the same time within noise
(a dummy Argon2 hash is verified when there is no stored one). Each case is signed in
``--rounds`` times, interleaved (a shared machine's slow second hits all four alike),
through the app in process on the embedded SQLite database of a temporary folder; the
figures are wall-clock medians and their ratio to the wrong password's.

``--flood`` serves the shipped server (2 processes, 4 threads each) on a fresh PostgreSQL
database and runs three phases of ``--seconds`` each, one after the other: sign-ins with the
right password from ``--clients`` threads (throughput at the chosen Argon2 parameters,
app/services/passwords.py); GET /users/{id} from ``--readers`` threads alone; the same reads
while ``--clients`` threads send wrong passwords as fast as they are answered. It prints the
reads' p50 and p99 in the two phases side by side, and what the flood got (401s, and the
503s of a full hashing queue). The sign-in limits are off, so the flood reaches the hashing.
The readers send as fast as they are answered, or with ``--read-rate R`` R reads a second
in all, each at its planned time and timed from it (a late answer delays no later read's
clock): as fast as answered, the readers alone keep these 2 CPUs busy, so any work the flood
adds, however low its priority, lengthens their queue; at a rate the server keeps up with,
the ratio is what the flood takes from reads a server has room for.
Usage: .venv/bin/python -m bench.sign_in [--rounds 200]
       | --flood [--seconds 5] [--against REV] [--flood-rounds 1] [--read-rate R]
"""

import argparse
import contextlib
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import update

from app import create_app
from app.config import Settings
from app.db import migrations
from app.db.session import db
from app.models import User
from app.schemas.users import UserCreate
from app.services import users
from app.services.passwords import hash_password

PASSWORD = "correct horse battery staple"
FLOOD_START_SECONDS = 1.0
CASES = {
    "unknown user": ("nobody", PASSWORD),
    "wrong password": ("ann", "wrong horse battery staple"),
    "no password": ("bob", PASSWORD),
    "deactivated": ("cy", PASSWORD),
}


def _for_seconds(
    seconds: float, threads: int, call: Callable[[httpx.Client], int]
) -> tuple[list[float], Counter[int]]:
    """Call from ``threads`` threads for ``seconds``; the latencies (s) and the statuses."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                status = call(client)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, statuses


def _at_rate(
    seconds: float, threads: int, rate: float, call: Callable[[httpx.Client], int]
) -> tuple[list[float], Counter[int]]:
    """``rate`` calls a second in all from ``threads`` threads for ``seconds``, each timed
    from when it was due: the latencies (s) and the statuses."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = time.perf_counter()
    interval = threads / rate  # each thread's

    def work(offset: float) -> None:
        due = start + offset
        with httpx.Client(timeout=30) as client:
            while due < start + seconds:
                time.sleep(max(0.0, due - time.perf_counter()))
                status = call(client)
                elapsed = time.perf_counter() - due
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1
                due += interval

    workers = [
        threading.Thread(target=work, args=(interval * i / threads,)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, statuses


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


Phases = tuple[Counter[int], list[float], list[float], Counter[int]]


def _phases(
    base: str,
    path: str,
    headers: dict[str, str],
    bodies: tuple[dict[str, str], dict[str, str]],
    args: argparse.Namespace,
) -> Phases:
    """Sign-ins with the right password; reads alone; reads under wrong-password sign-ins:
    the sign-ins' statuses, the reads' latencies alone and under the flood, its statuses."""
    seconds, clients, readers = args.seconds, args.clients, args.readers
    right, wrong = bodies

    def sign_in(body: dict[str, str]) -> Callable[[httpx.Client], int]:
        return lambda client: client.post(f"{base}/auth/sessions", json=body).status_code

    def read(client: httpx.Client) -> int:
        return client.get(f"{base}{path}", headers=headers).status_code

    def reads(seconds: float) -> list[float]:
        if args.read_rate:
            return _at_rate(seconds, readers, args.read_rate, read)[0]
        return _for_seconds(seconds, readers, read)[0]

    _signed, signed_statuses = _for_seconds(seconds, clients, sign_in(right))
    alone = reads(seconds)
    # The flood from a process of its own, as from another machine: its clients' Python
    # would otherwise share the readers' GIL and slow the reads' own clocks.
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        flood_args = (f"{base}/auth/sessions", wrong, seconds, clients, args.flood_priority)
        flood = pool.apply_async(_flood, flood_args)
        time.sleep(FLOOD_START_SECONDS)  # the spawned process starts its clients first
        under = reads(seconds - FLOOD_START_SECONDS)
        flood_statuses = flood.get()
    return signed_statuses, alone, under, flood_statuses


def _flood(
    url: str, body: dict[str, str], seconds: float, clients: int, priority: str
) -> Counter[int]:
    """In a process of its own: sign-ins with ``body`` from ``clients`` threads; statuses.

    At ``idle`` priority (SCHED_IDLE, which its threads inherit) its own Python takes only
    the CPU the server and the readers leave, as a flood from another machine would: on
    this 2-CPU machine its 16 clients otherwise take CPU the server would have had.
    """
    if priority == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    return _for_seconds(seconds, clients, lambda client: client.post(url, json=body).status_code)[1]


def flood(args: argparse.Namespace) -> None:
    """Print sign-in throughput, and read latency without and with a wrong-password flood;
    with ``--against REV``, ours at REV too, round after round, side by side."""
    from bench.run import OURS, ROOT, checkout, prepare_database, serve, server_env  # noqa: PLC0415

    url, key, first_id = prepare_database("app_bench_sign_in")
    app = create_app(Settings(DATABASE_URL=url, LOG_LEVEL="WARNING"))
    with app.app_context():
        db.session.execute(
            update(User).where(User.id == first_id).values(password_hash=hash_password(PASSWORD))
        )
        db.session.commit()
        name = db.session.get(User, first_id).username  # type: ignore[union-attr]
        for engine in db.engines.values():
            engine.dispose()
    right = {"username": name, "password": PASSWORD}
    wrong = {"username": name, "password": "wrong horse battery staple"}
    headers = {"Authorization": f"Bearer {key}"}
    env = {**server_env(url), "SIGN_IN_LIMIT": "", "SIGN_IN_ADDRESS_LIMIT": ""}
    print(
        f"shipped server, 2 processes x 4 threads, PostgreSQL; {args.seconds:g} s a phase; "
        f"the flood's process at {args.flood_priority} priority; reads "
        + (f"at {args.read_rate:g} a second" if args.read_rate else "as fast as answered")
    )
    print(
        f"{'ours':<14} {'signed in/s':>11}  {'GET p50 alone':>13}  {'p99 alone':>9}  "
        f"{'p50 flood':>9}  {'p99 flood':>9}  {'p99 ratio':>9}  {'reads':>11}  flood statuses"
    )
    with contextlib.ExitStack() as stack:
        trees = [("here", ROOT)]
        if args.against:
            trees.append((f"at {args.against}", stack.enter_context(checkout(args.against))))
        for _round in range(args.flood_rounds):
            for label, tree in trees:
                with serve("shipped", OURS, env, tree=tree) as (base, _pid):
                    phases = _phases(base, f"/users/{first_id}", headers, (right, wrong), args)
                signed, alone, under, flood_statuses = phases
                ms = [1000 * _percentile(v, q) for v in (alone, under) for q in (0.5, 0.99)]
                print(
                    f"{label:<14} {signed[201] / args.seconds:>11.1f}  {ms[0]:>13.2f}  "
                    f"{ms[1]:>9.2f}  {ms[2]:>9.2f}  {ms[3]:>9.2f}  {ms[3] / ms[1]:>8.2f}x  "
                    f"{len(alone):>5}/{len(under):<5}  {dict(flood_statuses)}"
                )
    print(
        f"{args.clients} clients sign in (right password), then {args.readers} readers GET "
        f"/users/{{id}} alone, then the same readers while {args.clients} clients send wrong "
        "passwords; reads: alone/under the flood"
    )


def main() -> None:
    """Print the four cases' medians side by side (or, with --flood, the flood's figures)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--flood", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--against", help="with --flood: also ours at this git revision")
    parser.add_argument("--flood-rounds", type=int, default=1)
    parser.add_argument(
        "--read-rate", type=float, default=0.0, help="with --flood: reads a second in all"
    )
    parser.add_argument(
        "--flood-priority",
        choices=("idle", "normal"),
        default="idle",
        help="the flood's own process: idle, as from another machine, or normal",
    )
    args = parser.parse_args()
    if args.flood:
        flood(args)
        return
    rounds = args.rounds
    with tempfile.TemporaryDirectory() as folder:
        # No limits: the bench signs the same names in hundreds of times a minute.
        settings = Settings(
            INSTANCE_PATH=Path(folder), RATE_LIMIT="", SIGN_IN_LIMIT="", SIGN_IN_ADDRESS_LIMIT=""
        )
        app = create_app(settings)
        with app.app_context():
            migrations.migrate(db.engine)
            for name in ("ann", "bob", "cy"):
                users.create_user(UserCreate(username=name, email=f"{name}@example.com"))
            hashed = hash_password(PASSWORD)
            db.session.execute(
                update(User).where(User.username.in_(["ann", "cy"])).values(password_hash=hashed)
            )
            db.session.execute(update(User).where(User.username == "cy").values(active=False))
            db.session.commit()
        client = app.test_client()
        times: dict[str, list[float]] = {case: [] for case in CASES}
        bodies: dict[str, bytes] = {}
        for _ in range(rounds):
            for case, (username, password) in CASES.items():
                started = time.perf_counter()
                response = client.post(
                    "/auth/sessions", json={"username": username, "password": password}
                )
                times[case].append(time.perf_counter() - started)
                assert response.status_code == 401, response.get_data(as_text=True)
                bodies[case] = response.get_data()
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
    same = len(set(bodies.values())) == 1
    reference = statistics.median(times["wrong password"])
    print(f"sign-in refusals, {rounds} rounds each, median wall-clock ms (ratio to wrong password)")
    print("  ".join(f"{case:>16}" for case in CASES))
    print(
        "  ".join(
            f"{statistics.median(t) * 1000:9.2f} ({statistics.median(t) / reference:.2f})"
            for t in times.values()
        )
    )
    print(f"the same 401 body for all four: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
