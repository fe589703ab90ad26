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
Usage: .venv/bin/python -m bench.sign_in [--rounds 200] | --flood [--seconds 5]
"""

import argparse
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


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def flood(seconds: float, clients: int, readers: int) -> None:
    """Print sign-in throughput, and read latency without and with a wrong-password flood."""
    from bench.run import OURS, prepare_database, serve, server_env  # noqa: PLC0415

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
    env = {**server_env(url), "SIGN_IN_LIMIT": "", "SIGN_IN_ADDRESS_LIMIT": ""}
    right = {"username": name, "password": PASSWORD}
    wrong = {"username": name, "password": "wrong horse battery staple"}
    headers = {"Authorization": f"Bearer {key}"}
    with serve("shipped", OURS, env) as (base, _pid):

        def sign_in(body: dict[str, str]) -> Callable[[httpx.Client], int]:
            return lambda client: client.post(f"{base}/auth/sessions", json=body).status_code

        def read(client: httpx.Client) -> int:
            return client.get(f"{base}/users/{first_id}", headers=headers).status_code

        signed, signed_statuses = _for_seconds(seconds, clients, sign_in(right))
        alone, alone_statuses = _for_seconds(seconds, readers, read)
        flooded: dict[str, tuple[list[float], Counter[int]]] = {}

        def flooding() -> None:
            flooded["flood"] = _for_seconds(seconds, clients, sign_in(wrong))

        flooder = threading.Thread(target=flooding)
        flooder.start()
        under, under_statuses = _for_seconds(seconds, readers, read)
        flooder.join()
    print(f"shipped server, 2 processes x 4 threads, PostgreSQL; {seconds:g} s a phase")
    print(
        f"sign-in, right password, {clients} clients: {signed_statuses[201] / seconds:6.1f} "
        f"signed in/s ({len(signed) / seconds:.1f} answered/s), median "
        f"{statistics.median(signed) * 1000:.1f} ms; statuses {dict(signed_statuses)}"
    )
    print(f"GET /users/{{id}}, {readers} readers      p50 ms    p99 ms   requests  statuses")
    for label, latencies, statuses in (
        ("alone", alone, alone_statuses),
        ("under the flood", under, under_statuses),
    ):
        print(
            f"  {label:<16} {_percentile(latencies, 0.5) * 1000:16.2f} "
            f"{_percentile(latencies, 0.99) * 1000:9.2f} {len(latencies):10d}  {dict(statuses)}"
        )
    ratio = _percentile(under, 0.99) / _percentile(alone, 0.99)
    flood_latencies, flood_statuses = flooded["flood"]
    print(f"p99 under the flood / alone: {ratio:.2f}x")
    print(
        f"the flood, {clients} clients: {len(flood_latencies) / seconds:.1f} sign-ins/s answered, "
        f"statuses {dict(flood_statuses)}"
    )


def main() -> None:
    """Print the four cases' medians side by side (or, with --flood, the flood's figures)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--flood", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--readers", type=int, default=2)
    args = parser.parse_args()
    if args.flood:
        flood(args.seconds, args.clients, args.readers)
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
