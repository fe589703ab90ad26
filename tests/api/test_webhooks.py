"""Webhook endpoints through the API: registered with a secret shown once, read, listed,
changed, rotated and deleted; URLs to non-public addresses refused; deliveries listed with
their attempts and retried; every write's change event recorded exactly, never a secret.

Deliveries are inserted here as the worker's fan-out would write them (app/worker/ sends
them); the receivers the URLs name are never called.
"""

import ast
import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update
from standardwebhooks import Webhook

from app.db.session import db
from app.models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.outbox import FAILED, SENT, STATES
from app.schemas.events import EVENT_TYPES
from app.schemas.webhooks import (
    DeliveryListQuery,
    DeliveryPage,
    DeliveryState,
    WebhookListQuery,
    WebhookPage,
    WebhookPayload,
    WebhookRead,
)
from app.services import outbox, webhooks
from app.services.events import EVENT_COLUMNS
from tests.factories import make_api_key, make_delivery
from tests.helpers import app_with, assert_problem

ROOT = Path(__file__).resolve().parents[2]
HOOK = "http://127.0.0.1:9/hook"  # allowed by this module's app; never called


@pytest.fixture(scope="module")
def hooks_app(app: Flask) -> Iterator[Flask]:
    """The app with 127.0.0.1 allowed, as an in-house receiver would be."""
    with app_with(app, WEBHOOK_ALLOWED_HOSTS="127.0.0.1") as allowing:
        yield allowing


@pytest.fixture
def hooks(hooks_app: Flask) -> FlaskClient:
    """A client of that app with every scope."""
    client = hooks_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(hooks_app)}"
    return client


def _register(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/webhooks", json={"url": HOOK, "events": ["*"], **fields})
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _last_event_id(app: Flask) -> int:
    with app.app_context():
        found = db.session.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc())).first()
        return 0 if found is None else int(found[0])


def _events_after(app: Flask, last: int) -> list[tuple[str, str | None, dict[str, Any]]]:
    with app.app_context():
        stmt = (
            select(AuditEvent.type, AuditEvent.resource_id, AuditEvent.changes)
            .where(AuditEvent.id > last)
            .order_by(AuditEvent.id)
        )
        return [tuple(row) for row in db.session.execute(stmt)]


def _stored(app: Flask, webhook_id: int) -> tuple[str, str | None]:
    with app.app_context():
        stmt = select(WebhookEndpoint.secret, WebhookEndpoint.previous_secret)
        return tuple(db.session.execute(stmt.where(WebhookEndpoint.id == webhook_id)).one())  # type: ignore[return-value]


def test_an_endpoint_is_registered_read_listed_changed_and_deleted(hooks: FlaskClient) -> None:
    response = hooks.post(
        "/webhooks",
        json={"url": HOOK, "events": ["user.deleted", "user.created"], "description": "CRM"},
    )
    assert response.status_code == 201
    created = response.get_json()
    secret = created.pop("secret")
    assert response.headers["Location"].endswith(f"/webhooks/{created['id']}")
    assert created["url"] == HOOK
    assert created["events"] == ["user.created", "user.deleted"]  # EVENT_TYPES' order
    assert created["description"] == "CRM"
    assert created["enabled"] is True
    assert created["disabled_reason"] is None
    assert created["failures_in_row"] == 0
    assert created["rotating"] is False
    assert created["previous_secret_until"] is None
    location = f"/webhooks/{created['id']}"
    assert hooks.get(location).get_json() == created
    assert hooks.get("/webhooks").get_json() == {"items": [created], "next_cursor": None}

    changed = hooks.patch(location, json={"events": ["*", "post.created"], "description": ""})
    assert changed.status_code == 200
    assert changed.get_json()["events"] == ["*"]
    assert changed.get_json()["description"] == ""
    assert "secret" not in changed.get_json()
    assert secret not in changed.get_data(as_text=True)

    assert hooks.delete(location).status_code == 204
    assert_problem(hooks.get(location), 404)
    assert_problem(hooks.delete(location), 404)
    assert_problem(hooks.patch(location, json={"enabled": False}), 404)
    assert_problem(hooks.post(f"{location}/secret"), 404)
    assert_problem(hooks.get(f"{location}/deliveries"), 404)


def test_the_secret_is_standard_webhooks_and_shown_once(
    hooks_app: Flask, hooks: FlaskClient
) -> None:
    created = _register(hooks)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    # The reference library takes it, and what it signs with it, it verifies.
    hook = Webhook(secret)
    moment = datetime.now(UTC)
    body = '{"type": "user.created"}'
    signature = hook.sign("1", moment, body)
    headers = {
        "webhook-id": "1",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }
    assert hook.verify(body, headers) == {"type": "user.created"}
    assert _stored(hooks_app, created["id"]) == (secret, None)
    # Never again: not in a read, a list, an update, nor in any change event.
    for response in [
        hooks.get(f"/webhooks/{created['id']}"),
        hooks.get("/webhooks"),
        hooks.patch(f"/webhooks/{created['id']}", json={"description": "x"}),
        hooks.get("/audit-events", query_string={"resource_type": "webhook"}),
    ]:
        assert response.status_code == 200
        assert '"secret"' not in response.get_data(as_text=True)
        assert secret.removeprefix("whsec_") not in response.get_data(as_text=True)


def test_secrets_differ_between_endpoints(hooks: FlaskClient) -> None:
    secrets = {_register(hooks)["secret"] for _ in range(5)}
    assert len(secrets) == 5


def test_rotation_keeps_the_old_secret_signing_for_the_overlap(
    hooks_app: Flask, hooks: FlaskClient
) -> None:
    created = _register(hooks)
    first = created["secret"]
    location = f"/webhooks/{created['id']}"
    before = datetime.now(UTC)
    rotated = hooks.post(f"{location}/secret")
    after = datetime.now(UTC)
    assert rotated.status_code == 200
    body = rotated.get_json()
    second = body.pop("secret")
    assert second.startswith("whsec_")
    assert second != first
    assert body["rotating"] is True
    until = datetime.fromisoformat(body["previous_secret_until"])
    assert before + timedelta(hours=24) <= until <= after + timedelta(hours=24)
    # Read back without the secret; the old one is kept as the previous one (on MariaDB too,
    # which assigns an UPDATE's columns left to right).
    assert hooks.get(location).get_json() == body
    assert _stored(hooks_app, created["id"]) == (second, first)

    third = hooks.post(f"{location}/secret").get_json()["secret"]
    assert _stored(hooks_app, created["id"]) == (third, second)  # the first is dropped

    # The overlap's end passed: no longer rotating, though the row keeps the moment.
    with hooks_app.app_context():
        past = datetime.now(UTC) - timedelta(seconds=1)
        db.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == created["id"])
            .values(previous_secret_until=past)
        )
        db.session.commit()
    shown = hooks.get(location).get_json()
    assert (shown["rotating"], shown["previous_secret_until"]) == (False, None)


def test_no_overlap_when_the_setting_is_zero(app: Flask) -> None:
    with app_with(app, WEBHOOK_ALLOWED_HOSTS="127.0.0.1", WEBHOOK_SECRET_OVERLAP=0) as other:
        client = other.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(other)}"
        created = _register(client)
        rotated = client.post(f"/webhooks/{created['id']}/secret").get_json()
        assert (rotated["rotating"], rotated["previous_secret_until"]) == (False, None)


@pytest.mark.parametrize(
    "events",
    [[], ["user.exploded"], ["user.*"], ["*", "nope"], ["USER.CREATED"], "user.created"],
)
def test_unknown_event_types_are_refused(hooks: FlaskClient, events: object) -> None:
    problem = assert_problem(hooks.post("/webhooks", json={"url": HOOK, "events": events}), 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "events"]  # type: ignore[index]


def test_every_event_type_may_be_chosen(hooks: FlaskClient) -> None:
    chosen = list(reversed(EVENT_TYPES)) + list(EVENT_TYPES)
    assert _register(hooks, events=chosen)["events"] == list(EVENT_TYPES)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["*"]}, "url"),
        ({"url": HOOK}, "events"),
        ({"url": HOOK, "events": ["*"], "secret": "whsec_AAAA"}, "secret"),
        ({"url": HOOK, "events": ["*"], "description": "x" * 501}, "description"),
        ({"url": HOOK + "/" + "x" * 2048, "events": ["*"]}, "url"),
    ],
)
def test_bodies_that_fail_validation_are_refused(
    hooks: FlaskClient, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(hooks.post("/webhooks", json=body), 422)
    assert problem["errors"][0]["loc"][1] == field  # type: ignore[index]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.1.2.3/hook", "a private address"),
        ("http://192.168.0.10/hook", "a private address"),
        ("http://localhost:8080/hook", "a loopback address"),
        ("http://[::1]/hook", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "a cloud metadata address"),
        ("http://169.254.1.1/hook", "a link-local address"),
        ("http://[fd00:ec2::254]/", "a cloud metadata address"),
        ("http://0.0.0.0/hook", "an unspecified address"),
        ("ftp://93.184.215.14/hook", "must start with http:// or https://"),
        ("https:///hook", "no host"),
        ("https://name.invalid/hook", "does not resolve"),
        ("https://93.184.215.14:99999/hook", "not a URL"),
    ],
)
def test_urls_to_non_public_addresses_are_refused(
    hooks: FlaskClient, url: str, reason: str
) -> None:
    problem = assert_problem(hooks.post("/webhooks", json={"url": url, "events": ["*"]}), 422)
    errors: list[dict[str, Any]] = problem["errors"]  # type: ignore[assignment]
    assert errors[0]["loc"] == ["body", "url"]
    assert errors[0]["type"] == "unsafe_url"
    assert reason.removeprefix("an ").removeprefix("a ") in errors[0]["msg"]
    assert hooks.get("/webhooks").get_json()["items"] == []


def test_credentials_in_a_url_are_refused_and_never_echoed(hooks: FlaskClient) -> None:
    url = "https://robot:hunter2-SECRET@93.184.215.14/hook"
    response = hooks.post("/webhooks", json={"url": url, "events": ["*"]})
    problem = assert_problem(response, 422)
    assert "user name or password" in str(problem["detail"])
    assert "hunter2" not in response.get_data(as_text=True)
    assert "robot" not in response.get_data(as_text=True)


def test_loopback_is_refused_unless_allowed(client: FlaskClient, hooks: FlaskClient) -> None:
    # The suite's app allows no host; this module's allows 127.0.0.1 (by that name only).
    problem = assert_problem(client.post("/webhooks", json={"url": HOOK, "events": ["*"]}), 422)
    assert "127.0.0.1 resolves to 127.0.0.1, a loopback address" in str(problem["detail"])
    assert "WEBHOOK_ALLOWED_HOSTS" in str(problem["detail"])
    _register(hooks)
    refused = hooks.post("/webhooks", json={"url": "http://localhost/", "events": ["*"]})
    assert_problem(refused, 422)


def test_a_changed_url_is_checked_too(hooks: FlaskClient) -> None:
    created = _register(hooks)
    location = f"/webhooks/{created['id']}"
    refused = hooks.patch(location, json={"url": "http://10.0.0.1/"})
    assert assert_problem(refused, 422)["errors"][0]["type"] == "unsafe_url"  # type: ignore[index]
    assert hooks.get(location).get_json()["url"] == HOOK
    moved = hooks.patch(location, json={"url": "http://127.0.0.1:10/other"})
    assert moved.get_json()["url"] == "http://127.0.0.1:10/other"


def test_enabling_clears_why_it_was_disabled(hooks_app: Flask, hooks: FlaskClient) -> None:
    created = _register(hooks)
    location = f"/webhooks/{created['id']}"
    # As the worker leaves it after a 410.
    with hooks_app.app_context():
        db.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == created["id"])
            .values(enabled=False, disabled_reason="the receiver answered 410", failures_in_row=7)
        )
        db.session.commit()
    shown = hooks.get(location).get_json()
    assert (shown["enabled"], shown["disabled_reason"], shown["failures_in_row"]) == (
        False,
        "the receiver answered 410",
        7,
    )
    last = _last_event_id(hooks_app)
    enabled = hooks.patch(location, json={"enabled": True}).get_json()
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["failures_in_row"]) == (
        True,
        None,
        0,
    )
    assert _events_after(hooks_app, last) == [
        (
            "webhook.updated",
            str(created["id"]),
            {"enabled": [False, True], "disabled_reason": ["the receiver answered 410", None]},
        )
    ]
    # Disabled by hand: no reason given.
    disabled = hooks.patch(location, json={"enabled": False}).get_json()
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, None)


def test_each_write_records_exactly_its_event_without_secrets(
    hooks_app: Flask, hooks: FlaskClient
) -> None:
    last = _last_event_id(hooks_app)
    created = _register(hooks, events=["user.created"], description="CRM")
    webhook_id = created["id"]
    location = f"/webhooks/{webhook_id}"
    hooks.patch(location, json={"description": "CRM sync", "events": ["user.created"]})
    hooks.patch(location, json={"events": ["user.created"]})  # changes nothing
    rotated = hooks.post(f"{location}/secret").get_json()
    # Refused writes record nothing.
    hooks.post("/webhooks", json={"url": "http://10.0.0.1/", "events": ["*"]})
    hooks.patch(location, json={"url": "http://10.0.0.1/"})
    hooks.post("/webhooks", json={"url": HOOK, "events": ["nope"]})
    hooks.delete(location)
    hooks.delete(location)  # a 404

    found = _events_after(hooks_app, last)
    fields = {"url": HOOK, "description": "CRM", "events": ["user.created"], "enabled": True}
    fields["disabled_reason"] = None
    assert found == [
        ("webhook.created", str(webhook_id), {k: [None, v] for k, v in fields.items()}),
        ("webhook.updated", str(webhook_id), {"description": ["CRM", "CRM sync"]}),
        ("webhook.updated", str(webhook_id), {}),
        (
            "webhook.secret_rotated",
            str(webhook_id),
            {"previous_secret_until": [None, found[3][2]["previous_secret_until"][1]]},
        ),
        (
            "webhook.deleted",
            str(webhook_id),
            {**{k: [v, None] for k, v in fields.items()}, "description": ["CRM sync", None]},
        ),
    ]
    until = datetime.fromisoformat(found[3][2]["previous_secret_until"][1])
    assert until == datetime.fromisoformat(rotated["previous_secret_until"])
    recorded = json.dumps(found)
    for secret in (created["secret"], rotated["secret"]):
        assert secret.removeprefix("whsec_") not in recorded
    assert 'secret"' not in recorded.replace("previous_secret_until", "")


def test_endpoints_are_paged_by_id(hooks: FlaskClient) -> None:
    made = [_register(hooks)["id"] for _ in range(5)]
    seen: list[int] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = hooks.get("/webhooks", query_string=query).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made


def _attempt(app: Flask, delivery_id: int, **values: Any) -> None:
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(insert(WebhookAttempt).values(delivery_id=delivery_id, **values))


def test_deliveries_are_listed_newest_first_with_their_attempts(
    hooks_app: Flask, hooks: FlaskClient
) -> None:
    endpoint = _register(hooks)["id"]
    other = _register(hooks)["id"]
    event_id = _last_event_id(hooks_app)  # webhook.created of other: the deliveries' event
    old = make_delivery(hooks_app, endpoint, state=FAILED, attempts=2, last_error="HTTP 500")
    _attempt(hooks_app, old, duration_ms=12, status_code=503, response_excerpt="busy")
    _attempt(hooks_app, old, duration_ms=5000, error="timed out after 5 s")
    make_delivery(hooks_app, other)
    hooks.patch(f"/webhooks/{other}", json={"description": "a newer event"})
    new = make_delivery(hooks_app, endpoint, state=SENT, attempts=1)
    _attempt(hooks_app, new, duration_ms=3, status_code=204)

    page = hooks.get(f"/webhooks/{endpoint}/deliveries").get_json()
    assert page["next_cursor"] is None
    assert [item["id"] for item in page["items"]] == [new, old]
    failed = page["items"][1]
    assert failed["event_id"] == event_id
    assert failed["event_type"] == "webhook.created"
    assert (failed["state"], failed["attempts"], failed["last_error"]) == ("failed", 2, "HTTP 500")
    assert [
        (a["duration_ms"], a["status_code"], a["error"], a["response_excerpt"])
        for a in failed["history"]
    ] == [(12, 503, None, "busy"), (5000, None, "timed out after 5 s", None)]
    assert all(a["started_at"] for a in failed["history"])
    assert [a["status_code"] for a in page["items"][0]["history"]] == [204]
    assert page["items"][0]["event_type"] == "webhook.updated"

    only_failed = hooks.get(f"/webhooks/{endpoint}/deliveries", query_string={"state": "failed"})
    assert [item["id"] for item in only_failed.get_json()["items"]] == [old]
    assert hooks.get(f"/webhooks/{other}/deliveries").get_json()["items"][0]["history"] == []
    refused = hooks.get(f"/webhooks/{endpoint}/deliveries", query_string={"state": "lost"})
    assert_problem(refused, 400)


def test_deliveries_are_paged_without_repeats(hooks_app: Flask, hooks: FlaskClient) -> None:
    endpoint = _register(hooks)["id"]
    made = []
    for _ in range(5):
        _register(hooks)  # a new event for each delivery (one delivery of an event each)
        made.append(make_delivery(hooks_app, endpoint))
    seen: list[int] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = hooks.get(f"/webhooks/{endpoint}/deliveries", query_string=query).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


def test_list_bytes_are_those_of_the_validated_pages(hooks_app: Flask, hooks: FlaskClient) -> None:
    assert tuple(WebhookRead.model_fields) == tuple(
        webhooks.webhook_item(_row(hooks_app, _register(hooks, description='é "q" <b>')["id"]))
    )
    endpoint = _register(hooks, description="日本語")["id"]
    hooks.post(f"/webhooks/{endpoint}/secret")
    delivery = make_delivery(hooks_app, endpoint, last_error='quote" & \u2028')
    _attempt(hooks_app, delivery, duration_ms=1, status_code=200, response_excerpt="<ok/>")

    response = hooks.get("/webhooks")
    with hooks_app.test_request_context():
        rows, cursor = webhooks.list_webhooks(WebhookListQuery())
    page = WebhookPage.model_validate(
        {"items": [webhooks.webhook_item(row) for row in rows], "next_cursor": cursor}
    )
    assert response.get_data() == page.model_dump_json().encode()
    deliveries = hooks.get(f"/webhooks/{endpoint}/deliveries")
    with hooks_app.test_request_context():
        items, cursor = webhooks.list_deliveries(endpoint, DeliveryListQuery())
    validated = DeliveryPage.model_validate({"items": items, "next_cursor": cursor})
    assert deliveries.get_data() == validated.model_dump_json().encode()


def _row(app: Flask, webhook_id: int) -> webhooks.EndpointRow:
    with app.test_request_context():
        return webhooks.get_webhook(webhook_id)


def test_a_retried_delivery_is_claimable_at_once(hooks_app: Flask, hooks: FlaskClient) -> None:
    endpoint = _register(hooks)["id"]
    other = _register(hooks)["id"]
    later = datetime.now(UTC) + timedelta(days=1)
    failed = make_delivery(
        hooks_app, endpoint, state=FAILED, attempts=9, next_attempt_at=later, finished_at=later
    )
    waiting = make_delivery(hooks_app, other, next_attempt_at=later)
    table = outbox.table_of(WebhookDelivery)

    def claim() -> list[int]:
        with hooks_app.app_context(), db.engine.connect() as conn:
            return outbox.claim(conn, table, limit=10, lease=timedelta(minutes=1))

    assert claim() == []  # neither is due
    retried = hooks.post(f"/webhooks/{endpoint}/deliveries/{failed}/retry")
    assert retried.status_code == 202
    assert retried.get_data() == b""
    shown = hooks.get(f"/webhooks/{endpoint}/deliveries").get_json()["items"][0]
    assert (shown["state"], shown["attempts"], shown["finished_at"]) == ("pending", 9, None)
    assert claim() == [failed]
    assert claim() == []  # leased now

    # Another endpoint's delivery, or none: 404, and nothing changes.
    assert_problem(hooks.post(f"/webhooks/{endpoint}/deliveries/{waiting}/retry"), 404)
    assert_problem(hooks.post(f"/webhooks/{endpoint}/deliveries/999999/retry"), 404)
    assert_problem(hooks.post(f"/webhooks/999999/deliveries/{failed}/retry"), 404)
    assert claim() == []


def test_a_sent_delivery_may_be_sent_again(hooks_app: Flask, hooks: FlaskClient) -> None:
    endpoint = _register(hooks)["id"]
    sent = make_delivery(hooks_app, endpoint, state=SENT, finished_at=datetime.now(UTC))
    assert hooks.post(f"/webhooks/{endpoint}/deliveries/{sent}/retry").status_code == 202
    with hooks_app.app_context(), db.engine.connect() as conn:
        claimed = outbox.claim(conn, outbox.table_of(WebhookDelivery), limit=5, lease=timedelta(1))
    assert claimed == [sent]


def test_deleting_an_endpoint_deletes_its_deliveries(hooks_app: Flask, hooks: FlaskClient) -> None:
    endpoint = _register(hooks)["id"]
    delivery = make_delivery(hooks_app, endpoint)
    _attempt(hooks_app, delivery, duration_ms=1, status_code=500)
    assert hooks.delete(f"/webhooks/{endpoint}").status_code == 204
    with hooks_app.app_context():
        assert db.session.execute(select(WebhookDelivery.id)).all() == []
        assert db.session.execute(select(WebhookAttempt.id)).all() == []


def test_the_payload_is_the_audit_events_item(hooks_app: Flask, hooks: FlaskClient) -> None:
    webhook_id = _register(hooks, description="payload")["id"]
    item = hooks.get("/audit-events", query_string={"limit": 1}).get_json()["items"][0]
    assert item["type"] == "webhook.created"
    with hooks_app.app_context():
        row = db.session.execute(select(*EVENT_COLUMNS).where(AuditEvent.id == item["id"])).one()
    body = json.loads(webhooks.payload(row).model_dump_json())
    assert body == {"type": "webhook.created", "timestamp": item["occurred_at"], "data": item}
    assert body["timestamp"].endswith("Z")
    assert body["data"]["resource"] == {"type": "webhook", "id": str(webhook_id)}
    # The document's webhooks section: one POST per type, that payload with that type.
    document = hooks.get("/openapi.json").get_json()
    assert sorted(document["webhooks"]) == sorted(EVENT_TYPES)
    post = document["webhooks"]["webhook.created"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["allOf"] == [{"$ref": "#/components/schemas/WebhookPayload"}]
    assert schema["properties"]["type"]["const"] == "webhook.created"
    assert [p["name"] for p in post["parameters"]] == [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ]
    assert WebhookPayload.model_json_schema()["required"] == ["type", "timestamp", "data"]


def test_event_types_are_the_contracts_and_every_recorded_one() -> None:
    # The contract's list, as written there ("`user.created|updated|...`" and single ones).
    contract = (ROOT / "docs" / "reference" / "contract.md").read_text()
    section = contract.split("## Change events", 1)[1].split("\n- The actor", 1)[0]
    listed = set()
    for group in re.findall(r"`([a-z_]+)\.([a-z_|]+)`", section):
        listed |= {f"{group[0]}.{verb}" for verb in group[1].split("|")}
    assert listed == set(EVENT_TYPES)
    # Every type a service records is in the list (the first argument of each call).
    recorded = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {
                "record",
                "values",
                "event_rows",
            }:
                first = node.args[1] if getattr(node.func, "attr", "") == "event_rows" else None
                candidates = [first] if first is not None else node.args[:1]
                recorded |= {
                    c.value
                    for c in candidates
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) and "." in c.value
                }
    assert recorded, "no recorded type found: the scan is broken"
    assert recorded <= set(EVENT_TYPES), recorded - set(EVENT_TYPES)


def test_delivery_states_are_the_outboxs() -> None:
    assert get_args(DeliveryState) == STATES


def _how_to_receiver(secret: str, monkeypatch: pytest.MonkeyPatch) -> Flask:
    page = (ROOT / "docs" / "how-to" / "webhooks.md").read_text()
    [code] = re.findall(r"^```python\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {"__name__": "how_to_receiver"}
    # The page's code as a reader would run it.
    exec(compile(code, "docs/how-to/webhooks.md", "exec"), namespace)
    receiver: Flask = namespace["receiver"]
    return receiver


def test_the_how_tos_receiver_takes_signed_deliveries_only(
    hooks_app: Flask, hooks: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = _register(hooks)
    with hooks_app.app_context():
        newest = select(*EVENT_COLUMNS).order_by(AuditEvent.id.desc()).limit(1)
        row = db.session.execute(newest).one()
    body = webhooks.payload(row).model_dump_json()
    moment = datetime.now(UTC)

    def headers(*secrets: str, event_id: object = row.id) -> dict[str, str]:
        signatures = " ".join(Webhook(s).sign(str(event_id), moment, body) for s in secrets)
        return {
            "webhook-id": str(event_id),
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signatures,
            "Content-Type": "application/json",
        }

    receiver = _how_to_receiver(created["secret"], monkeypatch).test_client()
    assert (
        receiver.post("/user-api", data=body, headers=headers(created["secret"])).status_code == 204
    )
    assert (
        receiver.post("/user-api", data=body, headers=headers(created["secret"])).status_code == 204
    )
    other = webhooks.new_secret()
    assert receiver.post("/user-api", data=body, headers=headers(other)).status_code == 400
    altered = body.replace("webhook.created", "webhook.deleted")
    assert (
        receiver.post("/user-api", data=altered, headers=headers(created["secret"])).status_code
        == 400
    )
    # During a rotation's overlap both signatures travel: a receiver on either secret verifies.
    new = hooks.post(f"/webhooks/{created['id']}/secret").get_json()["secret"]
    both = headers(new, created["secret"], event_id=row.id + 1)
    for secret in (created["secret"], new):
        rotated = _how_to_receiver(secret, monkeypatch).test_client()
        assert rotated.post("/user-api", data=body, headers=both).status_code == 204
