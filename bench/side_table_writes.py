"""What MariaDB's search side table (migration 0017) costs the writes: the request path adds
only the index on user_account.updated_at (the worker copies into the side table after the
commit). Two copies of the migrated user_account, one without that index, interleaved
rounds: a bulk INSERT ... SELECT of --rows users (an import's shape) and --one one-row
autocommit INSERTs (a POST's); medians and ratios.

Needs MariaDB with Mroonga (BENCH_MYSQL_URL, default root@127.0.0.1:3306); its own database
BENCH_DB_PREFIX + "side_table_writes". Usage:
    .venv/bin/python -m bench.side_table_writes [--rows 100000] [--one 500] [--rounds 9]
"""

import argparse
import os
import statistics
import time

from sqlalchemy import Connection, create_engine, text

from app.db import user_search
from bench.baseline import drop_database, mysql_database
from bench.import_bench import migrated_with_key

DB_NAME = os.environ.get("BENCH_DB_PREFIX", "") + "side_table_writes"
TABLES = {"without the index": "users_plain", "with the index": "users_marked"}


def _fresh(conn: Connection, table: str, indexed: bool) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    conn.execute(text(f"CREATE TABLE {table} LIKE user_account"))
    if not indexed:
        conn.execute(text(f"ALTER TABLE {table} DROP INDEX {user_search.UPDATED_INDEX}"))


def _bulk(conn: Connection, table: str, rows: int, tag: str) -> float:
    started = time.perf_counter()
    conn.execute(
        text(
            f"INSERT INTO {table} (username, email) SELECT concat('{tag}u', seq), "
            f"concat('{tag}e', seq, '@x.example') FROM seq_1_to_{rows}"
        )
    )
    return time.perf_counter() - started


def _one_by_one(conn: Connection, table: str, count: int, tag: str) -> float:
    insert = text(f"INSERT INTO {table} (username, email) VALUES (:u, :e)")
    started = time.perf_counter()
    for n in range(count):
        conn.execute(insert, {"u": f"{tag}o{n}", "e": f"{tag}o{n}@x.example"})
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    """Interleave the two tables' rounds; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--one", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    url = mysql_database(DB_NAME)
    migrated_with_key(url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    bulk: dict[str, list[float]] = {name: [] for name in TABLES}
    one: dict[str, list[float]] = {name: [] for name in TABLES}
    try:
        with engine.connect() as conn:
            if (
                conn.execute(
                    text(
                        f"SHOW INDEX FROM user_account WHERE Key_name = "
                        f"'{user_search.UPDATED_INDEX}'"
                    )
                ).first()
                is None
            ):
                raise SystemExit("no side table here: MariaDB needs Mroonga before migrating")
            for round_number in range(args.rounds):
                order = list(TABLES.items())
                for name, table in order if round_number % 2 == 0 else order[::-1]:
                    _fresh(conn, table, indexed=name == "with the index")
                    tag = f"r{round_number}"
                    bulk[name].append(_bulk(conn, table, args.rows, tag))
                    one[name].append(_one_by_one(conn, table, args.one, tag))
    finally:
        engine.dispose()
        drop_database("mysql", DB_NAME)
    base_bulk = statistics.median(bulk["without the index"])
    base_one = statistics.median(one["without the index"])
    print(f"medians of {args.rounds} interleaved rounds:")
    for name in TABLES:
        b, o = statistics.median(bulk[name]), statistics.median(one[name])
        print(
            f"  {name:<18} {args.rows:,} by INSERT ... SELECT {b:6.2f} s ({b / base_bulk:.2f}x)"
            f"  one-row INSERT {o:5.2f} ms ({o / base_one:.2f}x)"
        )
        rounds = [round(v, 2) for v in bulk[name]], [round(v, 2) for v in one[name]]
        print(f"    rounds: {rounds[0]} s, {rounds[1]} ms")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
