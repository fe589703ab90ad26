"""Webhook deliveries on every backend: fanned out once when events are sealed, sent signed
(Standard Webhooks, checked with its own library) to a real receiver on loopback, in order
per resource under retries, safe (no redirects, bounded time, addresses checked at
delivery), with their outcomes recorded on the delivery, its attempts and the endpoint."""

import base64
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, insert, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.config import Settings, current_settings
from app.db.session import db
from app.models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.outbox import FAILED, PENDING, SENT
from app.models.webhook import EXCERPT_MAX
from app.services import audit, events
from app.services.outbox import backoff
from app.worker.metrics import REGISTRY
from app.worker.webhooks import Deliveries
from tests.helpers import ROOT, free_port
from tests.webhook_receiver import Receiver, answer, fail_first, held, receiving

FAST = {
    "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "WEBHOOK_TIMEOUT": 2.0,
    "WEBHOOK_RETRY_BASE": 0.05,
    "WEBHOOK_RETRY_CAP": 0.1,
    "WEBHOOK_POLL_INTERVAL": 0.05,
}


def new_secret() -> str:
    """An endpoint secret in Standard Webhooks' form."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def add_endpoint(app: Flask, url: str, types: list[str] | None = None, **fields: Any) -> int:
    """Insert an endpoint row (the management API is another change's); its id."""
    values = {"url": url, "events": types or ["*"], "secret": new_secret(), **fields}
    with app.app_context(), db.engine.begin() as conn:
        key = conn.execute(insert(WebhookEndpoint).values(values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def add_events(app: Flask, *resources: tuple[str, str]) -> list[int]:
    """Commit one user.updated event per (resource type, id); their ids, in order."""
    ids = []
    with app.app_context(), db.engine.begin() as conn:
        for resource_type, resource_id in resources:
            row = events.values(
                "user.updated", resource_type, resource_id, {}, ("cli", None, "test")
            )
            key = conn.execute(events.INSERT_EVENT, row).inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
    return ids


def seal(app: Flask) -> None:
    with app.app_context():
        audit.seal()


def rows(app: Flask, model: Any, *where: Any) -> list[Any]:
    with app.app_context(), db.engine.connect() as conn:
        return list(conn.execute(select(model.__table__).where(*where).order_by(model.id)))


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds} s")
        time.sleep(0.05)


def settled(app: Flask, count: int) -> Callable[[], bool]:
    """Whether ``count`` deliveries are no longer pending."""
    return lambda: len(rows(app, WebhookDelivery, WebhookDelivery.state != PENDING)) >= count


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as started:
        yield started


@pytest.fixture
def deliver(app: Flask) -> Iterator[Callable[..., Deliveries]]:
    """Start the worker's delivery duty in this process with the test's settings."""
    started: list[Deliveries] = []

    def start(**overrides: Any) -> Deliveries:
        with app.app_context():
            settings = current_settings().model_copy(update={**FAST, **overrides})
            duty = Deliveries(settings, db.engine)
        duty.start()
        started.append(duty)
        return duty

    yield start
    for duty in started:
        duty.stop()


def test_sealing_fans_each_event_out_once_to_each_enabled_endpoint_that_wants_it(
    app: Flask,
) -> None:
    every = add_endpoint(app, "http://127.0.0.1:9/a", ["*"])
    created_only = add_endpoint(app, "http://127.0.0.1:9/b", ["user.created"])
    add_endpoint(app, "http://127.0.0.1:9/c", ["user.deleted"])
    add_endpoint(app, "http://127.0.0.1:9/d", ["*"], enabled=False)
    with app.app_context(), db.engine.begin() as conn:
        for kind, resource_id in (("user.created", "7"), ("user.updated", "7")):
            row = events.values(kind, "user", resource_id, {}, ("cli", None, "test"))
            conn.execute(events.INSERT_EVENT, row)
    seal(app)
    seal(app)  # nothing new: nothing more
    found = rows(app, WebhookDelivery)
    assert sorted((d.endpoint_id, d.resource_key) for d in found) == sorted(
        [(every, "user:7"), (every, "user:7"), (created_only, "user:7")]
    )
    assert len({(d.endpoint_id, d.event_id) for d in found}) == 3
    assert {d.state for d in found} == {PENDING}


def test_a_created_user_is_delivered_once_signed_with_its_event_id(
    app: Flask, client: FlaskClient, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    secret = new_secret()
    endpoint = add_endpoint(
        app, receiver.url("/ok"), ["user.created"], secret=secret, failures_in_row=3
    )
    created = client.post("/users", json={"username": "hooked", "email": "hooked@example.com"})
    assert created.status_code == 201, created.get_json()
    seal(app)
    deliver()
    wait_until(settled(app, 1), "the delivery")

    [got] = receiver.on("/ok")
    [event] = rows(app, AuditEvent, AuditEvent.type == "user.created")
    assert got.webhook_id == str(event.id)
    body = Webhook(secret).verify(got.body, got.headers)
    assert body["type"] == "user.created"
    assert body["timestamp"].endswith("Z")
    assert body["data"]["id"] == event.id
    assert body["data"]["resource"] == {"type": "user", "id": str(created.get_json()["id"])}
    assert body["data"]["seq"] == event.seq
    assert body["data"]["hash"] == event.hash
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)

    [delivery] = rows(app, WebhookDelivery)
    assert (delivery.state, delivery.attempts, delivery.last_error) == (SENT, 1, None)
    [attempt] = rows(app, WebhookAttempt)
    assert attempt.status_code == 200
    assert attempt.error is None
    assert attempt.duration_ms >= 0
    [row] = rows(app, WebhookEndpoint, WebhookEndpoint.id == endpoint)
    assert row.failures_in_row == 0  # a success resets the count


def test_while_a_rotation_overlaps_both_secrets_sign_and_after_it_only_the_new(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    old, new, older = new_secret(), new_secret(), new_secret()
    soon = datetime.now(UTC) + timedelta(hours=1)
    add_endpoint(
        app, receiver.url("/ok"), secret=new, previous_secret=old, previous_secret_until=soon
    )
    past = datetime.now(UTC) - timedelta(seconds=1)
    add_endpoint(
        app, receiver.url("/ok"), secret=new, previous_secret=older, previous_secret_until=past
    )
    add_events(app, ("user", "1"))
    seal(app)
    deliver()
    wait_until(settled(app, 2), "both deliveries")

    overlapping, after = sorted(
        receiver.on("/ok"), key=lambda r: len(r.headers["webhook-signature"]), reverse=True
    )
    assert len(overlapping.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(overlapping.body, overlapping.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(older).verify(after.body, after.headers)


def test_a_retry_keeps_its_webhook_id_and_holds_back_its_resources_later_events(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    receiver.routes["/flaky"] = fail_first(2)
    add_endpoint(app, receiver.url("/flaky"))
    ids = add_events(app, ("user", "1"), ("user", "2"), ("user", "1"), ("user", "1"))
    seal(app)
    deliver()
    wait_until(settled(app, 4), "every delivery")

    got = receiver.on("/flaky")
    of_one = [int(r.webhook_id) for r in got if r.payload["data"]["resource"]["id"] == "1"]
    # Each event of user 1 tried three times (two 500s, then 200) before the next begins.
    first, third, fourth = ids[0], ids[2], ids[3]
    assert of_one == [first] * 3 + [third] * 3 + [fourth] * 3
    assert {d.state for d in rows(app, WebhookDelivery)} == {SENT}
    statuses = [a.status_code for a in rows(app, WebhookAttempt)]
    assert sorted(statuses) == [200] * 4 + [500] * 8
    # The same bytes each time, each signature valid for its own timestamp.
    assert len({r.body for r in got if r.webhook_id == str(first)}) == 1


def test_a_410_disables_the_endpoint_and_records_why_in_an_event(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    receiver.routes["/gone"] = lambda _r, _n: (410, {}, b"gone for good")
    endpoint = add_endpoint(app, receiver.url("/gone"))
    add_events(app, ("user", "1"), ("user", "1"))
    seal(app)
    deliver()
    wait_until(settled(app, 1), "the first delivery")
    time.sleep(0.3)  # a few polls: the second (held back by the first) must stay unsent

    assert len(receiver.on("/gone")) == 1
    [row] = rows(app, WebhookEndpoint)
    assert not row.enabled
    assert "410" in (row.disabled_reason or "")
    states = sorted(d.state for d in rows(app, WebhookDelivery))
    assert states == [FAILED, PENDING]
    [attempt] = rows(app, WebhookAttempt)
    assert (attempt.status_code, attempt.response_excerpt) == (410, "gone for good")
    [event] = rows(app, AuditEvent, AuditEvent.type == "webhook.disabled")
    assert (event.actor_kind, event.resource_type, event.resource_id) == (
        "system",
        "webhook",
        str(endpoint),
    )
    assert event.changes["enabled"] == [True, False]


def test_failing_for_good_in_a_row_disables_the_endpoint(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    receiver.routes["/down"] = answer(503)
    add_endpoint(app, receiver.url("/down"))
    add_events(app, ("user", "1"), ("user", "2"))
    seal(app)
    deliver(WEBHOOK_MAX_ATTEMPTS=2, WEBHOOK_DISABLE_AFTER=2)
    wait_until(settled(app, 2), "both deliveries given up")

    assert [d.state for d in rows(app, WebhookDelivery)] == [FAILED, FAILED]
    assert [d.attempts for d in rows(app, WebhookDelivery)] == [2, 2]
    assert len(receiver.on("/down")) == 4
    wait_until(lambda: not rows(app, WebhookEndpoint)[0].enabled, "the endpoint disabled")
    [row] = rows(app, WebhookEndpoint)
    assert "2 deliveries in a row" in (row.disabled_reason or "")
    assert len(rows(app, AuditEvent, AuditEvent.type == "webhook.disabled")) == 1


def test_a_redirect_is_a_failed_attempt_not_followed(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    receiver.routes["/moved"] = lambda _r, _n: (302, {"Location": receiver.url("/ok")}, b"")
    add_endpoint(app, receiver.url("/moved"))
    add_events(app, ("user", "1"))
    seal(app)
    deliver(WEBHOOK_MAX_ATTEMPTS=1)
    wait_until(settled(app, 1), "the delivery given up")

    assert len(receiver.on("/moved")) == 1
    assert receiver.on("/ok") == []
    [delivery] = rows(app, WebhookDelivery)
    assert delivery.state == FAILED
    assert "302" in delivery.last_error
    assert [a.status_code for a in rows(app, WebhookAttempt)] == [302]


def test_a_name_is_resolved_and_its_checked_address_connected_to_with_its_host_header(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    # localhost may resolve to ::1 first, where nothing listens: the next address is tried.
    receiver.routes["/ok?tenant=7"] = answer(200)
    add_endpoint(app, f"http://localhost:{receiver.port}/ok?tenant=7")
    add_events(app, ("user", "1"))
    seal(app)
    deliver(WEBHOOK_ALLOWED_HOSTS="localhost")
    wait_until(settled(app, 1), "the delivery")

    [got] = receiver.on("/ok?tenant=7")
    assert got.headers["host"] == f"localhost:{receiver.port}"
    assert [d.state for d in rows(app, WebhookDelivery)] == [SENT]


def test_only_the_first_bytes_of_an_answer_are_kept(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    receiver.routes["/chatty"] = lambda _r, _n: (200, {}, b"x" * 5_000 + b"END")
    add_endpoint(app, receiver.url("/chatty"))
    add_events(app, ("user", "1"))
    seal(app)
    deliver()
    wait_until(settled(app, 1), "the delivery")

    [attempt] = rows(app, WebhookAttempt)
    assert attempt.response_excerpt == "x" * EXCERPT_MAX


def test_a_stalling_receiver_is_cut_at_the_timeout(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    add_endpoint(app, receiver.url("/stall"))
    add_events(app, ("user", "1"))
    seal(app)
    deliver(WEBHOOK_TIMEOUT=0.5, WEBHOOK_READ_TIMEOUT=30.0, WEBHOOK_MAX_ATTEMPTS=1)
    # The receiver holds the request for 60 s; the attempt ends at its 0.5 s bound.
    wait_until(settled(app, 1), "the attempt cut", seconds=15)

    [attempt] = rows(app, WebhookAttempt)
    assert attempt.status_code is None
    assert "WEBHOOK_TIMEOUT" in attempt.error
    assert attempt.duration_ms < 15_000
    assert len(receiver.on("/stall")) == 1


def test_a_private_address_is_refused_at_delivery_without_a_connection(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    add_endpoint(app, receiver.url("/ok"))  # allowed at registration, say, then not
    add_events(app, ("user", "1"))
    seal(app)
    deliver(WEBHOOK_ALLOWED_HOSTS="", WEBHOOK_MAX_ATTEMPTS=1)
    wait_until(settled(app, 1), "the delivery refused")

    [attempt] = rows(app, WebhookAttempt)
    assert attempt.status_code is None
    assert "127.0.0.1" in attempt.error
    assert "loopback" in attempt.error
    assert receiver.received == []


def test_a_rolled_back_or_refused_write_sends_nothing(
    app: Flask, client: FlaskClient, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    add_endpoint(app, receiver.url("/ok"), ["user.created", "user.updated"])
    with app.app_context():
        events.record("user.updated", "user", 1, {"email": ["a@x.org", "b@x.org"]})
        db.session.rollback()
    user = {"username": "once", "email": "once@example.com"}
    assert client.post("/users", json=user).status_code == 201
    assert client.post("/users", json=user).status_code == 409
    seal(app)
    deliver()
    wait_until(settled(app, 1), "the one delivery")

    assert [r.payload["type"] for r in receiver.on("/ok")] == ["user.created"]
    assert len(rows(app, WebhookDelivery)) == 1


def test_a_delivery_whose_endpoint_is_deleted_mid_send_is_skipped(
    app: Flask, receiver: Receiver, deliver: Callable[..., Deliveries]
) -> None:
    gate = threading.Event()
    receiver.routes["/held"] = held(gate)
    endpoint = add_endpoint(app, receiver.url("/held"))
    add_events(app, ("user", "1"))
    seal(app)

    def skipped() -> float:
        labels = {"outcome": "skipped"}
        return REGISTRY.get_sample_value("worker_webhook_attempts_total", labels) or 0.0

    before = skipped()
    deliver()
    wait_until(lambda: len(receiver.on("/held")) == 1, "the request held")
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint))
    gate.set()
    wait_until(lambda: skipped() == before + 1, "the outcome skipped, nothing recorded")
    assert rows(app, WebhookAttempt) == []


def test_the_worker_process_delivers_and_reports_its_queue(
    app: Flask, database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    add_endpoint(app, receiver.url("/ok"))
    port = free_port()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WORKER_PORT": str(port),
        "WORKER_INTERVAL": "0.2",
        **{name: str(value) for name, value in FAST.items()},
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        add_events(app, ("user", "1"))
        wait_until(lambda: len(receiver.on("/ok")) == 1, "the delivery by the worker")
        wait_until(settled(app, 1), "the delivery recorded")

        def metric(name: str) -> float:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            [line] = [ln for ln in text.splitlines() if ln.startswith(name)]
            return float(line.split()[1])

        wait_until(
            lambda: metric('worker_webhook_attempts_total{outcome="sent"}') == 1, "the count"
        )
        wait_until(lambda: metric("worker_webhook_deliveries_pending") == 0, "the queue")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:  # only the process this test started, by its pid
            process.kill()
            process.wait(timeout=10)
    assert "worker stopped" in log.read_text()


def test_sigterm_lets_the_delivery_in_flight_finish_then_exits_0(
    app: Flask, database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    gate = threading.Event()
    receiver.routes["/held"] = held(gate)
    add_endpoint(app, receiver.url("/held"))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WORKER_PORT": str(free_port()),
        "WORKER_INTERVAL": "0.2",
        **{name: str(value) for name, value in FAST.items()},
        "WEBHOOK_TIMEOUT": "20",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        add_events(app, ("user", "1"))
        wait_until(lambda: len(receiver.on("/held")) == 1, "the request held")
        process.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert process.poll() is None, log.read_text()  # still waiting for the receiver
        gate.set()
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:  # only the process this test started, by its pid
            process.kill()
            process.wait(timeout=10)
    [delivery] = rows(app, WebhookDelivery)
    assert delivery.state == SENT  # answered after the signal, and recorded


def test_backoff_grows_to_about_a_day_over_the_default_attempts() -> None:
    # The schedule the settings document: 14 waits, doubling from 60 s to a 4 h cap.
    settings = Settings(DATABASE_URL="sqlite://")
    waits = [
        backoff(n, base=settings.WEBHOOK_RETRY_BASE, cap=settings.WEBHOOK_RETRY_CAP)
        for n in range(1, settings.WEBHOOK_MAX_ATTEMPTS)
    ]
    span = sum(waits, timedelta())
    assert timedelta(hours=14) <= span <= timedelta(hours=28, minutes=15)
