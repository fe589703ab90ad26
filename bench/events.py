"""What recording change events costs: the same code with recording on and off, side by side.

POST /users and PATCH /users/{id} CPU per request (each WSGI call made directly, as
bench/cpu.py does; PostgreSQL unless --backend says), and an NDJSON import's time, with
``app.services.events.RECORDING`` on against off (off, a write's unit of work is also the
one-statement autocommit() it was before events). Rounds interleave the variants; the
least a variant needed in any round is its figure. Targets (issue 35): at most 15% more CPU
a write, at most 5% slower an import.

``--instructions N`` also counts the instructions of N requests of each kind and variant under
valgrind (callgrind), in one process after the rounds: another process on the machine does not
change them, where it spreads the CPU rounds by half or more.
Usage: .venv/bin/python -m bench.events [--requests 2000] [--rounds 3] [--rows 200000]
[--backend postgresql|sqlite|mysql] [--instructions 200] [--database app_bench_events]
"""

import argparse
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from bench.cpu import _CALLGRIND, ROOT, WARM_UP, _environ, call, cpu_per_request, load
from bench.run import USERS, prepare_database


def _posts(token: str, tag: str) -> Iterator[dict[str, Any]]:
    for n in itertools.count():
        name = f"ev{tag}-{n}"
        body = json.dumps({"username": name, "email": f"{name}@example.com"}).encode()
        yield _environ("POST", "/users", token, body)


def _patches(token: str, first_id: int, tag: str) -> Iterator[dict[str, Any]]:
    for n in itertools.count():
        body = json.dumps({"email": f"p{tag}-{n}@example.com"}).encode()
        yield _environ("PATCH", f"/users/{first_id + n % USERS}", token, body)


def _import_seconds(app: Any, token: str, rows: int, tag: str) -> tuple[float, float]:
    body = "".join(
        json.dumps({"username": f"im{tag}-{n}", "email": f"im{tag}-{n}@example.com"}) + "\n"
        for n in range(rows)
    ).encode()
    environ = _environ("POST", "/users/import", token, body)
    environ["CONTENT_TYPE"] = "application/x-ndjson"
    wall, cpu = time.perf_counter(), time.process_time()
    status = call(app, environ)
    if not status.startswith("200"):
        raise RuntimeError(f"import: {status}")
    return time.perf_counter() - wall, time.process_time() - cpu


def _requests(kind: str, token: str, first_id: int, tag: str) -> Iterator[dict[str, Any]]:
    return _posts(token, tag) if kind == "post" else _patches(token, first_id, tag)


def _counted(token: str, first_id: int, count: int) -> None:
    """Under callgrind: for each kind, recording on then off, warm up and make ``count``
    requests between the two markers (bench.cpu's), one dump each."""
    app = load("ours")
    from app.services import events  # noqa: PLC0415 - after the app is built

    url = os.environ["DATABASE_URL"]
    engine = create_engine(url)
    for kind in ("post", "patch"):
        for recording in (True, False):
            events.RECORDING = recording
            requests = _requests(kind, token, first_id, f"i{int(recording)}")
            for environ in itertools.islice(requests, WARM_UP):
                call(app, environ)
            batch = list(itertools.islice(requests, count))
            # Every batch starts from the same state: an empty write-ahead log (SQLite's
            # checkpoint, every 1,000 pages, landing in one batch and not the other) and the
            # app's own heap frozen (a full collection over it, likewise): between runs they
            # moved a figure by up to 7 points.
            if url.startswith("sqlite"):
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            gc.collect()
            gc.freeze()
            os.getppid()
            for environ in batch:
                call(app, environ)
            os.getpgrp()


def _instructions(url: str, token: str, first_id: int, count: int) -> dict[tuple[str, bool], float]:
    """Instructions per request of each kind, recording on and off, under callgrind."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as folder:
        out = Path(folder) / "callgrind.out"
        command = [
            *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *_CALLGRIND),
            *(sys.executable, "-m", "bench.events", "--counted", token, str(first_id), str(count)),
        ]
        env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        # The dumps are numbered in the order the measured batches ran.
        dumps = sorted(Path(folder).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        figures = []
        for dump in dumps:
            text = dump.read_text()
            if "Trigger: --dump-before=os_getpgrp" in text:
                summary = next(ln for ln in text.splitlines() if ln.startswith("summary:"))
                figures.append(int(summary.split()[1]) / count)
    keys = [(kind, recording) for kind in ("post", "patch") for recording in (True, False)]
    return dict(zip(keys, figures, strict=True))


def _print_cpu(
    cpu: dict[tuple[str, bool], list[float]],
    counted: dict[tuple[str, bool], float],
    instructions: int,
) -> None:
    """Each write's CPU (and instructions, where counted) with events against without."""
    for kind in ("post", "patch"):
        on, off = min(cpu[kind, True]), min(cpu[kind, False])
        rounds = " / ".join(", ".join(f"{v:.0f}" for v in cpu[kind, r]) for r in (True, False))
        # Each round's own ratio: a drift of the machine between rounds moves both variants of
        # a round alike, where the least of each variant may come from different rounds.
        pairs = zip(cpu[kind, True], cpu[kind, False], strict=True)
        paired = statistics.median(a / b for a, b in pairs)
        print(
            f"{kind:<6} events {on:6.0f} us CPU/request, without {off:6.0f}: "
            f"{(on / off - 1) * 100:+5.1f}%; median of the rounds' ratios "
            f"{(paired - 1) * 100:+5.1f}%  (rounds on / off: {rounds})"
        )
        if counted:
            on, off = counted[kind, True], counted[kind, False]
            print(
                f"{kind:<6} events {on:10,.0f} instructions/request, without {off:10,.0f}: "
                f"{(on / off - 1) * 100:+5.1f}%  ({instructions} requests each, callgrind)"
            )


def main() -> None:
    """Print each variant's figures and the ratios of on to off."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--backend", choices=["postgresql", "sqlite", "mysql"], default="postgresql"
    )
    parser.add_argument("--instructions", type=int, default=0, metavar="N")
    parser.add_argument("--database", default="app_bench_events", help="its name on a server")
    parser.add_argument("--counted", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.counted:
        token, first_id, count = args.counted
        _counted(token, int(first_id), int(count))
        return
    load_at_start = os.getloadavg()[0]
    url, token, first_id = prepare_database(args.database, args.backend)
    os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING")
    app = load("ours")
    from app.services import events  # noqa: PLC0415 - after the app is built

    cpu: dict[tuple[str, bool], list[float]] = {}
    imports: dict[bool, list[tuple[float, float]]] = {}
    for round_number in range(args.rounds):
        # Alternating which variant goes first, so neither always runs on the other's leftovers.
        order = (True, False) if round_number % 2 == 0 else (False, True)
        for recording in order:
            events.RECORDING = recording
            tag = f"{int(recording)}{round_number}"
            for kind in ("post", "patch"):
                requests = _requests(kind, token, first_id, tag)
                figure = cpu_per_request(app, requests, args.requests)
                cpu.setdefault((kind, recording), []).append(figure)
            if args.rows:
                imports.setdefault(recording, []).append(
                    _import_seconds(app, token, args.rows, tag)
                )
    events.RECORDING = True
    # The sealer's side: every event of the run, linked into the chain in batches.
    from app.services import audit  # noqa: PLC0415

    with app.app_context():  # type: ignore[attr-defined]
        started = time.perf_counter()
        sealed = audit.seal()
        sealing = time.perf_counter() - started
        started = time.perf_counter()
        verdict = audit.verify()
        verifying = time.perf_counter() - started
    counted = _instructions(url, token, first_id, args.instructions) if args.instructions else {}
    print(
        f"{args.backend}; load average {load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} "
        f"at end; {args.rounds} rounds of {args.requests} requests, interleaved"
    )
    _print_cpu(cpu, counted, args.instructions)
    if args.rows:
        on_wall = min(w for w, _ in imports[True])
        off_wall = min(w for w, _ in imports[False])
        print(
            f"import of {args.rows:,} rows: events {on_wall:.2f} s, without {off_wall:.2f} s: "
            f"{(on_wall / off_wall - 1) * 100:+.1f}%  (rounds on: "
            f"{', '.join(f'{w:.2f}' for w, _ in imports[True])}; off: "
            f"{', '.join(f'{w:.2f}' for w, _ in imports[False])})"
        )

    print(
        f"seal: {sealed:,} events in {sealing:.2f} s ({sealed / sealing:,.0f}/s); "
        f"verify: {verdict.checked:,} in {verifying:.2f} s ({verdict.checked / verifying:,.0f}/s)"
    )


if __name__ == "__main__":
    main()
