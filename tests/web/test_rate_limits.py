"""Rate limits per API key (RATE_LIMIT): the headers, a 429 problem with Retry-After past the
budget, other keys untouched, requests without a valid key counted by address, and no key
looked up once the address is spent; the probes never limited; one budget across the
processes of one server (a SQLite file in the instance folder) and across two servers
sharing Redis."""

import hmac
import multiprocessing
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from limits import parse_many

from app.config import Settings
from app.services import api_keys
from app.web.rate_limits import MemoryCounter, RateLimits, SQLiteCounter, counter_for
from tests.factories import make_api_key
from tests.helpers import (
    IN_CI,
    app_with,
    assert_problem,
    counting_statements,
    free_port,
    serving,
)

BUDGET = 5
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def limited(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """The app with a budget of BUDGET requests a minute, counted afresh: the default
    storage, in an instance folder of its own."""
    with app_with(app, RATE_LIMIT=f"{BUDGET}/minute", INSTANCE_PATH=tmp_path) as limited_app:
        yield limited_app


def _client(app: Flask, token: str | None) -> FlaskClient:
    client = app.test_client()
    if token is not None:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def test_a_key_past_its_budget_gets_429_with_retry_after(limited: Flask, app: Flask) -> None:
    client = _client(limited, make_api_key(app))

    within = [client.get("/users") for _ in range(BUDGET)]
    over = client.get("/users")

    assert [r.status_code for r in within] == [200] * BUDGET
    assert [r.headers["RateLimit-Remaining"] for r in within] == [
        str(n) for n in range(BUDGET - 1, -1, -1)
    ]
    assert {r.headers["RateLimit-Limit"] for r in within} == {str(BUDGET)}
    assert all(0 <= int(r.headers["RateLimit-Reset"]) <= 61 for r in within)
    assert not [r for r in within if "Retry-After" in r.headers]
    assert_problem(over, 429)
    assert 0 < int(over.headers["Retry-After"]) <= 61
    assert over.headers["RateLimit-Remaining"] == "0"


def test_another_key_has_its_own_budget(limited: Flask, app: Flask) -> None:
    first = _client(limited, make_api_key(app))
    for _ in range(BUDGET + 1):
        first.get("/users")

    assert _client(limited, make_api_key(app)).get("/users").status_code == 200


def test_requests_without_a_valid_key_are_limited_by_address(limited: Flask) -> None:
    guesser = _client(limited, "umk_000000000000_wrong")

    refused = [guesser.get("/users").status_code for _ in range(BUDGET)]
    over = guesser.get("/users")

    assert refused == [401] * BUDGET
    assert_problem(over, 429)


def test_probes_are_never_limited(limited: Flask) -> None:
    client = _client(limited, None)

    statuses = {client.get(path).status_code for path in ["/healthz"] * 10 + ["/readyz"] * 10}

    assert statuses == {200}


def test_limit_off_when_empty(client: FlaskClient) -> None:
    responses = [client.get("/users") for _ in range(BUDGET + 1)]

    assert {r.status_code for r in responses} == {200}
    assert "RateLimit-Limit" not in responses[-1].headers


def _redis_reachable() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        if IN_CI:
            pytest.fail(f"CI=true but Redis is unreachable at {REDIS_URL}: {error}")
        pytest.skip(f"Redis is unreachable at {REDIS_URL}: {error}")


@pytest.mark.live
@pytest.mark.postgresql_only("two servers sharing Redis and the PostgreSQL database")
def test_two_servers_sharing_redis_enforce_one_budget(
    backend: str, app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _redis_reachable()
    token = make_api_key(app)  # a new key: its counter in Redis starts at zero
    env = {"RATE_LIMIT": f"{BUDGET}/minute", "RATE_LIMIT_STORAGE_URL": REDIS_URL}
    headers = {"Authorization": f"Bearer {token}"}
    with (
        serving(database_url, tmp_path_factory, **env) as one,
        serving(database_url, tmp_path_factory, **env) as two,
    ):
        statuses = []
        for n in range(BUDGET + 1):
            url = (one if n % 2 else two).url
            statuses.append(httpx.get(f"{url}/users", headers=headers, timeout=10).status_code)
        # Each server's own memory would have let both have BUDGET.
        other = httpx.get(f"{one.url}/users", headers=headers, timeout=10)

    assert statuses == [200] * BUDGET + [429], f"{statuses}\n{one.log()}\n{two.log()}"
    assert other.status_code == 429
    assert int(other.headers["Retry-After"]) > 0


def test_an_unreadable_rate_limit_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="RATE_LIMIT"):
        Settings(RATE_LIMIT="lots")


def test_an_unreachable_redis_falls_back_to_this_process(app: Flask) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with app_with(app, RATE_LIMIT=f"{BUDGET}/minute", RATE_LIMIT_STORAGE_URL=dead) as fallback:
        client = _client(fallback, make_api_key(app))

        statuses = [client.get("/users").status_code for _ in range(BUDGET + 1)]

    # Served, and still limited, by this process's own count.
    assert statuses == [200] * BUDGET + [429]


def test_the_processes_of_one_server_share_one_budget(app: Flask, tmp_path: Path) -> None:
    # Two apps on one instance folder, as the server's worker processes are: each used to
    # count in its own memory, and let BUDGET through each.
    token = make_api_key(app)
    settings = {"RATE_LIMIT": f"{BUDGET}/minute", "INSTANCE_PATH": tmp_path}
    with app_with(app, **settings) as one, app_with(app, **settings) as two:
        clients = [_client(one, token), _client(two, token)]
        responses = [clients[n % 2].get("/users") for n in range(BUDGET + 1)]

    assert [r.status_code for r in responses] == [200] * BUDGET + [429]
    remaining = [r.headers["RateLimit-Remaining"] for r in responses]
    assert remaining == [str(n) for n in range(BUDGET - 1, -1, -1)] + ["0"]
    assert (tmp_path / "rate_limits.db").is_file()


def _hit_many(path: str, key: str, times: int) -> list[int]:
    # In a process of its own (spawned): what one worker's hits answered.
    counter = SQLiteCounter(Path(path))
    return [counter.hit(key, 60)[0] for _ in range(times)]


def test_the_file_counts_every_hit_of_concurrent_processes_once(tmp_path: Path) -> None:
    # A file none has opened yet: each process creates the table and sets WAL as it starts.
    path, processes, times = str(tmp_path / "counts" / "rate_limits.db"), 4, 200
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        answered = pool.starmap(_hit_many, [(path, "key:shared", times)] * processes)

    counts = sorted(count for answers in answered for count in answers)
    # Atomic: no two hits saw the same count, none was lost.
    assert counts == list(range(1, processes * times + 1))
    assert all(answers == sorted(answers) for answers in answered)


def test_a_window_of_the_file_ends_and_old_windows_are_purged(tmp_path: Path) -> None:
    now = [1_000_000.0]
    counter = SQLiteCounter(tmp_path / "rate_limits.db", clock=lambda: now[0])

    first = [counter.hit("a", 60) for _ in range(3)]
    now[0] += 30
    later = counter.hit("a", 60)
    counter.hit("b", 3600)
    now[0] += 31  # "a"'s window (opened at 1,000,000) is over; "b"'s is not
    assert counter.peek("a") == 0
    assert counter.peek("b") == 1
    now[0] += 60  # past the purge interval: the next hit deletes closed windows
    after = counter.hit("c", 60)

    assert first == [(1, 1_000_060.0), (2, 1_000_060.0), (3, 1_000_060.0)]
    assert later == (4, 1_000_060.0)
    assert after == (1, now[0] + 60)
    connection = counter._connection()
    assert sorted(k for (k,) in connection.execute("SELECT key FROM hits")) == ["b", "c"]
    assert counter.hit("a", 60) == (1, now[0] + 60)


def test_a_window_in_memory_ends_as_the_files_do_and_starts_no_thread() -> None:
    now = [1_000_000.0]
    counter = MemoryCounter(clock=lambda: now[0])
    threads_before = threading.active_count()

    first = [counter.hit("a", 60) for _ in range(3)]
    now[0] += 30
    later = counter.hit("a", 60)
    counter.hit("b", 3600)
    now[0] += 31
    peeks = counter.peek("a"), counter.peek("b")
    now[0] += 60  # past the purge interval: the next hit drops closed windows
    after = counter.hit("c", 60)

    assert first == [(1, 1_000_060.0), (2, 1_000_060.0), (3, 1_000_060.0)]
    assert later == (4, 1_000_060.0)
    assert peeks == (0, 1)
    assert after == (1, now[0] + 60)
    assert sorted(counter._windows) == ["b", "c"]
    # limits' MemoryStorage started a timer thread to expire its keys.
    assert threading.active_count() == threads_before
    assert isinstance(counter_for("memory://"), MemoryCounter)


def test_each_limit_counts_under_the_key_and_window_limits_gives_it() -> None:
    # The keys are made here, not by limits' key_for(): the same keys, so that a process
    # of an older release, sharing the file, counts the same windows.
    items = parse_many("100/minute;1000/hour;5 per 2 seconds")
    limits = RateLimits(Settings(RATE_LIMIT="100/minute;1000/hour;5 per 2 seconds"))
    limits.shared = memory = MemoryCounter()

    limits.count("key:abc")
    spent = limits.spent("address:1.2.3.4")

    assert sorted(memory._windows) == sorted(item.key_for("key:abc") for item in items)
    expiries = {key: ends - memory.clock() for key, (_, ends) in memory._windows.items()}
    for item in items:
        assert expiries[item.key_for("key:abc")] == pytest.approx(item.get_expiry(), abs=1)
    assert spent is False


def test_an_unusable_file_falls_back_to_this_process(app: Flask, tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    where = f"sqlite:///{tmp_path / 'not-a-folder' / 'rate_limits.db'}"
    with app_with(app, RATE_LIMIT=f"{BUDGET}/minute", RATE_LIMIT_STORAGE_URL=where) as fallback:
        client = _client(fallback, make_api_key(app))

        statuses = [client.get("/users").status_code for _ in range(BUDGET + 1)]

    assert statuses == [200] * BUDGET + [429]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:////"])
def test_a_sqlite_storage_without_a_file_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValueError, match="RATE_LIMIT_STORAGE_URL"):
        Settings(RATE_LIMIT_STORAGE_URL=url)


def test_the_default_storage_is_the_instance_folders_file(tmp_path: Path) -> None:
    assert Settings(INSTANCE_PATH=tmp_path).rate_limit_storage_url == (
        f"sqlite:///{tmp_path.resolve() / 'rate_limits.db'}"
    )
    assert Settings(RATE_LIMIT_STORAGE_URL="memory://").rate_limit_storage_url == "memory://"


@pytest.fixture
def statements(limited: Flask) -> Iterator[list[str]]:
    """Every SQL statement the limited app sends while the test runs."""
    with counting_statements(limited) as sent:
        yield sent


def _wrong_keys(app: Flask) -> list[str]:
    prefix = make_api_key(app).split("_")[1]
    return [
        f"umk_{prefix}_" + "B" * 43,  # a real prefix, a wrong secret
        "umk_000000000000_" + "A" * 43,  # an unknown prefix
        f"umk_{secrets.token_hex(6)}_" + "C" * 43,  # a new guess
    ]


def test_past_the_address_budget_a_wrong_key_costs_no_lookup(
    limited: Flask, app: Flask, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    compares: list[object] = []
    real_compare = hmac.compare_digest

    def counting_compare(a: Any, b: Any) -> bool:
        compares.append(a)
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting_compare)
    wrong = _wrong_keys(app)
    spending = [_client(limited, wrong[0]).get("/users") for _ in range(BUDGET)]
    work = (len(statements), len(compares))
    statements.clear()
    compares.clear()

    over = [_client(limited, token).get("/users") for token in [*wrong, wrong[0]]]

    assert [r.status_code for r in spending] == [401] * BUDGET
    assert work == (BUDGET, BUDGET)  # a lookup and a compare each while the address had budget
    for response in over:
        assert_problem(response, 429)
    # Nothing for any of them, a real prefix or not: no lookup, and nothing to time apart.
    assert statements == []
    assert compares == []


def test_a_spent_address_keeps_the_keys_it_was_verified_with(
    limited: Flask, app: Flask, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Verified, then out of the cache at once: looked up again, whatever the address.
    monkeypatch.setattr(api_keys, "KEY_CACHE_SECONDS", 0.0)
    token = make_api_key(app)
    assert _client(limited, token).get("/users").status_code == 200
    for _ in range(BUDGET):
        _client(limited, _wrong_keys(app)[1]).get("/users")
    statements.clear()

    again = _client(limited, token).get("/users")
    looked_up = len(statements)
    never_verified = _client(limited, make_api_key(app)).get("/users")

    assert again.status_code == 200
    assert looked_up >= 1
    # What the address's budget costs: a key this process has not verified waits with it.
    assert_problem(never_verified, 429)


@pytest.mark.live
def test_the_workers_of_the_shipped_server_share_one_budget(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = make_api_key(app)
    # Two threads each: four processes' pools stay within a shared server's connections.
    env = {"RATE_LIMIT": f"{BUDGET}/minute", "WEB_CONCURRENCY": "4", "WEB_THREADS": "2"}
    with serving(database_url, tmp_path_factory, **env) as server:
        # A new connection each: granian's workers take turns at accepting them.
        keyed = [
            httpx.get(f"{server.url}/users", headers={"Authorization": f"Bearer {token}"})
            for _ in range(BUDGET + 1)
        ]
        anonymous = [httpx.get(f"{server.url}/users") for _ in range(BUDGET + 1)]
        log = server.log()

    for responses, within in ((keyed, 200), (anonymous, 401)):
        statuses = [r.status_code for r in responses]
        assert statuses == [within] * BUDGET + [429], f"{statuses}\n{log}"
        remaining = [r.headers["RateLimit-Remaining"] for r in responses]
        assert remaining == [str(n) for n in range(BUDGET - 1, -1, -1)] + ["0"], remaining
