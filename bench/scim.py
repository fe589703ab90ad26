"""SCIM, in process through the WSGI app (no HTTP server), side by side in one run:

1. provisioning: users created one by one through POST /scim/v2/Users, in /scim/v2/Bulk
   requests of 1,000, and through POST /users, interleaved in rounds (users/s, ratios);
2. filters: userName sw and co, and emails sw and co, against an exact userName eq, over
   --filter-users users on PostgreSQL and MariaDB (milliseconds a request, ratios to eq): texts
   that match 100 users and one, the issue's "ab", which matches none of the seeded
   user0000001... (the worst case for a scan: every row read), and short texts every user
   holds ("us", "@h"); with the search side table, first as if it were not there (the plain
   scan), then through it;
3. a group's PATCH adding one member: in a group of 10 and one of 10,000 (milliseconds).

Usage: .venv/bin/python -m bench.scim [--users 2000] [--filter-users 1000000] [--rounds 3]
                                      [--backends postgresql mysql]
                                      [--parts provisioning filters group]
(the group part takes its 10,010 members from the users the other parts made)
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from app import create_app
from app.config import Settings
from app.db import migrations, user_search
from app.db.session import db
from app.services.api_keys import create_api_key
from bench.run import UNREACHED_LIMIT
from bench.search import database_for, seed

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _app(backend: str, folder: Path) -> tuple[Flask, FlaskClient, str]:
    url = database_for(backend, folder)
    # The shipped limits on, out of reach: their cost counts, their 429s do not.
    app = create_app(Settings(DATABASE_URL=url, LOG_LEVEL="WARNING", RATE_LIMIT=UNREACHED_LIMIT))
    with app.app_context():
        migrations.migrate(db.engine)
        _, token = create_api_key("bench", ["scim", "users:write", "users:read"])
        db.session.commit()
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return app, client, url


def _user(name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name, "emails": [{"value": f"{name}@example.com"}]}


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def provisioning(client: FlaskClient, count: int, rounds: int) -> None:
    """Print users/s for each way of creating ``count`` users, and the ratios."""

    def one_by_one(tag: str) -> None:
        for n in range(count):
            response = client.post("/scim/v2/Users", json=_user(f"s{tag}-{n}"))
            assert response.status_code == 201, response.get_data(as_text=True)

    def bulk(tag: str) -> None:
        for start in range(0, count, 1000):
            operations = [
                {"method": "POST", "path": "/Users", "bulkId": str(n), "data": _user(f"b{tag}-{n}")}
                for n in range(start, min(start + 1000, count))
            ]
            response = client.post(
                "/scim/v2/Bulk", json={"schemas": [BULK], "Operations": operations}
            )
            statuses = {o["status"] for o in response.get_json()["Operations"]}
            assert statuses == {"201"}, statuses

    def rest(tag: str) -> None:
        for n in range(count):
            name = f"r{tag}-{n}"
            response = client.post(
                "/users", json={"username": name, "email": f"{name}@example.com"}
            )
            assert response.status_code == 201, response.get_data(as_text=True)

    ways = {"SCIM one by one": one_by_one, "SCIM Bulk": bulk, "POST /users": rest}
    rates: dict[str, list[float]] = {name: [] for name in ways}
    for round_number in range(rounds):
        for name, way in ways.items():
            rates[name].append(count / _timed(partial(way, str(round_number))))
    base = statistics.median(rates["POST /users"])
    print(f"provisioning {count:,} users a round, medians of {rounds} rounds:")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:<16} {median:8.0f} users/s  {median / base:5.2f}x POST /users")


def filters(backend: str, client: FlaskClient, url: str, count: int, rounds: int) -> None:
    """Seed ``count`` users, then time each filter against the exact lookup. Where the side
    table is (app/db/user_search.py; MariaDB with Mroonga, PostgreSQL): as if it were not,
    once the worker's copy has caught up, and again with 1,000 users changed since it (read
    by the updated_at index)."""
    seed(backend, url, count)
    middle = f"user{count // 2:07d}"
    cases = {
        "userName eq": f'userName eq "{middle}"',
        "userName sw": f'userName sw "{middle[:-2]}"',
        'userName sw "ab"': 'userName sw "ab"',
        "emails sw": f'emails sw "u{count // 2}@"',
        "userName co": f'userName co "{middle[2:]}"',
        'userName co "ab"': 'userName co "ab"',
        "emails co": f'emails co "u{count // 2}@"',
        'emails co "ab"': 'emails co "ab"',
        'userName co "us"': 'userName co "us"',
        'emails co "@h"': 'emails co "@h"',
        "userName ew": f'userName ew "{middle[-5:]}"',
    }
    engine = create_engine(url)
    if not user_search.ready(engine):
        _filter_rounds(client, cases, count, rounds, "")
        return
    with client.application.app_context():
        searching = db.engine
    # The app's searches as before the side table: told it is not there (asked again below).
    user_search._ready[searching] = False
    _filter_rounds(client, cases, count, rounds, ", side table not asked (the plain scan)")
    user_search.forget(searching)
    started = time.perf_counter()
    copied = user_search.catch_up(engine)
    print(f"side table: {copied:,} users copied in {time.perf_counter() - started:.1f} s")
    _filter_rounds(client, cases, count, rounds, ", side table caught up")
    now, div = (
        ("statement_timestamp()", "/") if backend == "postgresql" else ("utc_timestamp(6)", "DIV")
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE user_account SET display_name = 'changed', updated_at = {now} "
                f"WHERE id % (SELECT count(*) {div} 1000 FROM user_account) = 1"
            )
        )
    _filter_rounds(client, cases, count, rounds, ", 1,000 users changed since")
    started = time.perf_counter()
    copied = user_search.catch_up(engine)
    print(f"side table: {copied:,} users copied in {time.perf_counter() - started:.2f} s")
    engine.dispose()


def _filter_rounds(
    client: FlaskClient, cases: dict[str, str], count: int, rounds: int, state: str
) -> None:
    found: dict[str, int] = {}
    repeats: dict[str, int] = {}

    def run(name: str, repeat: int) -> None:
        for _ in range(repeat):
            query = {"filter": cases[name], "count": 10}
            response = client.get("/scim/v2/Users", query_string=query)
            assert response.status_code == 200, response.get_data(as_text=True)
            found[name] = response.get_json()["totalResults"]

    for name in cases:
        # Statement caches and the planner's first look, out of the figures; then as many
        # requests a sample as fit in about a second (10 at most).
        run(name, 1)
        repeats[name] = max(1, min(10, int(1 / _timed(partial(run, name, 1)))))
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name in cases:
            samples[name].append(_timed(partial(run, name, repeats[name])) * 1000 / repeats[name])
    base = statistics.median(samples["userName eq"])
    print(f"filters over {count:,} users{state}, medians of {rounds} rounds:")
    for name, expression in cases.items():
        median = statistics.median(samples[name])
        print(
            f"  {name:<17} {median:9.2f} ms  {median / base:7.1f}x eq"
            f"  ({found[name]} found: {expression})"
        )


def big_group(app: Flask, client: FlaskClient, rounds: int) -> None:
    """PATCH add one member to a group of 10 and to one of 10,000."""
    with app.app_context():
        first = db.session.execute(text("SELECT min(id) FROM user_account")).scalar_one()
    ids = [str(first + n) for n in range(10_011 + rounds * 2)]
    small = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "ten",
            "members": [{"value": i} for i in ids[:10]],
        },
    )
    large = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "big",
            "members": [{"value": i} for i in ids[10:10_010]],
        },
    )
    times: dict[str, list[float]] = {"group of 10": [], "group of 10,000": []}
    spare = iter(ids[10_010:])
    for _ in range(rounds):
        for name, made in (("group of 10", small), ("group of 10,000", large)):
            add = {
                "schemas": [PATCH],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": next(spare)}]}],
            }
            group_id = made.get_json()["id"]

            def run(body: dict[str, Any] = add, gid: str = group_id) -> None:
                response = client.patch(f"/scim/v2/Groups/{gid}", json=body)
                assert response.status_code == 204, response.get_data(as_text=True)

            times[name].append(_timed(run) * 1000)
    small_ms = statistics.median(times["group of 10"])
    large_ms = statistics.median(times["group of 10,000"])
    print(
        f"  PATCH adding one member: group of 10 {small_ms:.1f} ms, "
        f"of 10,000 {large_ms:.1f} ms ({large_ms / small_ms:.2f}x)"
    )


def main() -> None:
    """Run the three parts on each backend."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--filter-users", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["postgresql", "mysql"])
    parts = ["provisioning", "filters", "group"]
    parser.add_argument("--parts", nargs="+", choices=parts, default=parts)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends:
            app, client, url = _app(backend, Path(folder))
            print(f"== {backend}")
            if "provisioning" in args.parts:
                provisioning(client, args.users, args.rounds)
            if "filters" in args.parts:
                filters(backend, client, url, args.filter_users, args.rounds)
            if "group" in args.parts:
                big_group(app, client, args.rounds)
            with app.app_context():
                db.session.remove()
                for engine in db.engines.values():
                    engine.dispose()


if __name__ == "__main__":
    main()
