"""Rate limits per API key (RATE_LIMIT): the headers, a 429 problem with Retry-After past the
budget, other keys untouched, requests without a valid key counted by address, the probes
never limited, and one budget across two server processes sharing Redis."""

from collections.abc import Iterator

import httpx
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app.config import Settings
from tests.factories import make_api_key
from tests.helpers import IN_CI, app_with, assert_problem, free_port, serving

BUDGET = 5
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def limited(app: Flask) -> Iterator[Flask]:
    """The app with a budget of BUDGET requests a minute, counted afresh in its memory."""
    with app_with(app, RATE_LIMIT=f"{BUDGET}/minute") as limited_app:
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
