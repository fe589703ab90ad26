"""GET /metrics: requests by route template, method and status; refused keys by kind;
pools; imports; the build; and, under the shipped server, every worker's counts summed."""

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app import __version__
from app.db.migrations import release
from app.db.session import db
from tests.factories import make_api_key, make_user
from tests.helpers import ndjson, serving, user_rows

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return _samples(response.get_data(as_text=True))


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _requests(samples: Samples, route: str, method: str, status: int) -> float:
    labels = {"route": route, "method": method, "status": str(status)}
    return _value(samples, "http_requests_total", **labels)


def test_requests_are_counted_by_route_template_method_and_status(
    app: Flask, client: FlaskClient, anonymous_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user(app, username="counted")
    before = _scrape(anonymous_client)

    client.get(f"/users/{user.id}")
    client.get(f"/users/{user.id}")
    client.get("/users/999999")
    client.post("/users", json={"username": "counted", "email": "other@example.com"})
    client.get("/no/such/path")

    def explode(*_: object) -> None:
        raise RuntimeError("forced")

    monkeypatch.setattr("app.services.users.get_user", explode)
    client.get(f"/users/{user.id}")
    after = _scrape(anonymous_client)

    def delta(route: str, method: str, status: int) -> float:
        return _requests(after, route, method, status) - _requests(before, route, method, status)

    assert delta("/users/<id:user_id>", "GET", 200) == 2
    assert delta("/users/<id:user_id>", "GET", 404) == 1
    assert delta("/users", "POST", 409) == 1
    assert delta("<unmatched>", "GET", 404) == 1
    assert delta("/users/<id:user_id>", "GET", 500) == 1
    labels = {"route": "/users/<id:user_id>", "method": "GET", "status": "200"}
    observed = _value(after, "http_request_duration_seconds_count", **labels) - _value(
        before, "http_request_duration_seconds_count", **labels
    )
    assert observed == 2
    assert _value(after, "http_requests_in_flight") == _value(before, "http_requests_in_flight")


def test_refused_keys_are_counted_by_kind(app: Flask, anonymous_client: FlaskClient) -> None:
    reader = make_api_key(app, ["users:read"])
    before = _scrape(anonymous_client)

    anonymous_client.get("/users")
    anonymous_client.get("/users", headers={"Authorization": "Basic abc"})
    wrong = reader[:-4] + ("AAAA" if not reader.endswith("AAAA") else "BBBB")
    anonymous_client.get("/users", headers={"Authorization": f"Bearer {wrong}"})
    anonymous_client.post("/users", json={}, headers={"Authorization": f"Bearer {reader}"})
    after = _scrape(anonymous_client)

    for kind in ("missing", "malformed", "rejected", "forbidden"):
        name = "api_key_auth_failures_total"
        assert _value(after, name, kind=kind) - _value(before, name, kind=kind) == 1, kind


def test_pool_gauges_move_while_a_connection_is_held(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    with app.app_context():
        idle = _value(_scrape(anonymous_client), "db_pool_checked_out", pool="default")
        with db.engine.connect():
            held = _value(_scrape(anonymous_client), "db_pool_checked_out", pool="default")
        back = _value(_scrape(anonymous_client), "db_pool_checked_out", pool="default")

    assert held == idle + 1
    assert back == idle
    assert _value(_scrape(anonymous_client), "db_pool_size", pool="default") >= 1


def test_imports_and_the_build_are_reported(client: FlaskClient) -> None:
    before = _scrape(client)

    client.post("/users/import", data=ndjson(user_rows(7)), content_type="application/x-ndjson")
    after = _scrape(client)

    created = _value(after, "user_import_rows_total", outcome="created")
    assert created - _value(before, "user_import_rows_total", outcome="created") == 7
    count = "user_import_duration_seconds_count"
    assert _value(after, count) - _value(before, count) == 1
    build = {"version": __version__, "migration_head": release().head or "none"}
    assert _value(after, "app_build_info", **build) == 1


@pytest.mark.live
@pytest.mark.postgresql_only("two worker processes of the shipped server on PostgreSQL")
def test_metrics_add_up_every_worker_process(
    backend: str,
    api_token: str,
    database_url: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    headers = {"Authorization": f"Bearer {api_token}"}
    sent = 40
    with serving(database_url, tmp_path_factory, **env) as server:
        # A new connection each: the two workers share the listening socket.
        get: Callable[[str], httpx.Response] = lambda path: httpx.get(  # noqa: E731
            f"{server.url}{path}", headers=headers, timeout=10
        )
        statuses = [get("/users/999999").status_code for _ in range(sent)]
        first = _samples(get("/metrics").text)
        second = _samples(get("/metrics").text)
        writers = {p.name.rsplit("_", 1)[1] for p in folder.glob("counter_*.db")}

    assert statuses == [404] * sent
    assert len(writers) >= 2, f"only {writers} wrote metrics:\n{server.log()}"
    for scraped in (first, second):
        assert _requests(scraped, "/users/<id:user_id>", "GET", 404) == sent


def test_invented_methods_leave_metrics_unchanged_in_size(client: FlaskClient) -> None:
    # Unauthenticated, every one refused: the series must not multiply with what clients
    # send. Warm every series the flood will touch first (a count's digits may grow; the
    # number of lines may not).
    for path in ("/users", "/users/1"):
        client.open(path, method="XWARM")
    client.get("/metrics")
    before = client.get("/metrics").get_data().splitlines()
    methods = [f"M{n:05d}{'ABCDEFGH'[n % 8]}" for n in range(10_000)]
    statuses = {
        client.open(f"/users/{n % 50 + 1}", method=m).status_code for n, m in enumerate(methods)
    }
    after = client.get("/metrics").get_data()
    assert statuses <= {405, 429}
    assert len(after.splitlines()) == len(before)
    seen = {
        dict(labels).get("method")
        for name, labels in _samples(after.decode())
        if name == "http_requests_total"
    }
    assert "OTHER" in seen
    assert not any(m in seen for m in methods)
