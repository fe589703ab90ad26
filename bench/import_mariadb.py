"""Import benchmark on MariaDB: our HTTP and CLI import against the engine's two raw bulk
paths, LOAD DATA LOCAL INFILE and multi-row INSERTs (PyMySQL's executemany), into the same
table with the same indexes; then the server's peak memory importing and exporting many
users. Interleaved rounds; medians and ratios side by side.

Needs MariaDB (BENCH_MYSQL_URL, default root@127.0.0.1:3306). Usage:
    .venv/bin/python -m bench.import_mariadb [--rows 100000] [--memory-rows 300000] [--rounds 3]
"""

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.baseline import drop_database, mysql_database
from bench.import_bench import (
    cli_import,
    count_users,
    http_import,
    measure_memory,
    migrated_with_key,
    truncate_users,
    write_file,
)
from bench.run import OURS, serve, server_env

DB_NAME = "app_import_mariadb"
BATCH = 5_000
NAMES = ("raw LOAD DATA LOCAL", "raw multi-row INSERT", "our CLI", "our HTTP", "our HTTP, skip")


def _rows(count: int) -> list[tuple[str, str]]:
    return [(f"user{n}", f"user{n}@example.com") for n in range(count)]


def load_data(url: str, rows: int, work: Path) -> float:
    """LOAD DATA LOCAL INFILE of the rows from a CSV file, writing the file included."""
    engine = create_engine(url, connect_args={"local_infile": True})
    started = time.perf_counter()
    path = work / "users.csv"
    with path.open("w", newline="") as out:
        csv.writer(out, lineterminator="\n").writerows(_rows(rows))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE user_account"
            " FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' (username, email)"
        )
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def multi_row_insert(url: str, rows: int) -> float:
    """executemany in batches, which PyMySQL sends as one multi-row INSERT a batch."""
    engine = create_engine(url)
    records = [{"u": u, "e": e} for u, e in _rows(rows)]
    insert = text("INSERT INTO user_account (username, email) VALUES (:u, :e)")
    started = time.perf_counter()
    with engine.begin() as conn:
        for start in range(0, rows, BATCH):
            conn.execute(insert, records[start : start + BATCH])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def compare(url: str, token: str, data: Path, rows: int, rounds: int) -> dict[str, float]:
    """The five, interleaved round after round; each one's median rows/s."""
    runs: dict[str, list[float]] = {name: [] for name in NAMES}
    with serve("shipped", OURS, server_env(url)) as (base, _):
        for round_number in range(1, rounds + 1):
            print(f"round {round_number}")
            truncate_users(url)
            runs["raw LOAD DATA LOCAL"].append(rows / load_data(url, rows, data.parent))
            assert count_users(url) == rows
            truncate_users(url)
            runs["raw multi-row INSERT"].append(rows / multi_row_insert(url, rows))
            assert count_users(url) == rows
            truncate_users(url)
            rate, _ = cli_import(url, data)
            assert count_users(url) == rows
            runs["our CLI"].append(rate)
            truncate_users(url)
            runs["our HTTP"].append(rows / http_import(base, token, data))
            assert count_users(url) == rows
            truncate_users(url)
            runs["our HTTP, skip"].append(rows / http_import(base, token, data, "skip"))
            assert count_users(url) == rows
            print("   ", "  ".join(f"{n} {v[-1]:,.0f}" for n, v in runs.items()))
    return {name: statistics.median(values) for name, values in runs.items()}


def report(rates: dict[str, float], rounds: int) -> None:
    """Print the medians and the ratios of ours to each raw path."""
    print(f"\nmedians of {rounds} rounds (rows/s)")
    for name, rate in rates.items():
        print(f"  {name:<22} {rate:>10,.0f}")
    print("\nratios (rows/s)")
    for ours in ("our HTTP", "our HTTP, skip", "our CLI"):
        for raw in ("raw LOAD DATA LOCAL", "raw multi-row INSERT"):
            print(f"  {ours:<15} / {raw:<21} {rates[ours] / rates[raw]:6.2f}x")
    raw_ratio = rates["raw LOAD DATA LOCAL"] / rates["raw multi-row INSERT"]
    print(f"  raw LOAD DATA LOCAL / raw multi-row INSERT {raw_ratio:6.2f}x")


def main() -> None:
    """Run the comparison and the memory measurement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--memory-rows", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = mysql_database(DB_NAME)
    try:
        token = migrated_with_key(url)
        work = Path(tempfile.mkdtemp(prefix="import-mariadb-"))
        data = work / "users.ndjson"
        write_file(data, args.rows)
        print(f"{args.rows:,} users, {data.stat().st_size / 1e6:.1f} MB of NDJSON, on MariaDB\n")
        report(compare(url, token, data, args.rows, args.rounds), args.rounds)
        big = work / "many.ndjson"
        write_file(big, args.memory_rows)
        measure_memory("shipped", url, token, big, args.memory_rows)
    finally:
        drop_database("mysql", DB_NAME)


if __name__ == "__main__":
    main()
