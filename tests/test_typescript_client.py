"""The TypeScript client (clients/typescript): its generated types and its version in step
with the served document, ``tsc --strict`` clean, and its users and posts flow passing
against the shipped server. Node and npm are needed: missing, these tests skip, except under
CI=true. tests/test_client_packages.py installs it as a package, as a consumer does.
"""

import filecmp
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.session import db
from app.models import AuditEvent
from app.services import webhook_delivery
from app.services.events import EVENT_COLUMNS
from scripts.generate_client import (
    TS_DIR,
    TS_SCHEMA,
    document_version,
    generate_typescript,
    npm_ci,
    served_document,
    typescript_versions,
)
from tests.factories import PUBLIC_HOOK_URL
from tests.helpers import IN_CI, LiveServer


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with the client's locked packages installed."""
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        if IN_CI:
            pytest.fail("CI=true but node or npm is missing: .ci/run installs them")
        pytest.skip("node and npm are needed for the TypeScript client")
    npm_ci()
    return found


def _tsc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TS_DIR / "node_modules" / ".bin" / "tsc"), "--project", str(TS_DIR), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _node(node: str, test: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    compiled = TS_DIR / "build" / "test" / test
    return subprocess.run(
        [node, str(compiled)],
        env=env,
        cwd=TS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_typescript_types_match_the_served_document(node: str, tmp_path: Path) -> None:
    fresh = tmp_path / TS_SCHEMA.name
    generate_typescript(fresh)

    assert filecmp.cmp(TS_DIR / TS_SCHEMA, fresh, shallow=False), (
        f"clients/typescript/{TS_SCHEMA.as_posix()} is out of date with GET /openapi.json; "
        "regenerate it with `.venv/bin/python scripts/generate_client.py` and commit the result."
    )


def test_typescript_package_version_is_the_documents() -> None:
    expected = document_version(served_document())

    versions = typescript_versions()

    assert set(versions.values()) == {expected}, (
        f"the API is {expected}, the TypeScript package says {versions}; regenerate with "
        "`.venv/bin/python scripts/generate_client.py`."
    )


def test_typescript_client_type_checks_under_strict(node: str) -> None:
    options = json.loads((TS_DIR / "tsconfig.json").read_text())["compilerOptions"]
    assert options["strict"] is True

    result = _tsc("--noEmit")

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.live
@pytest.mark.postgresql_only("the TypeScript client's flow runs against the PostgreSQL server")
def test_typescript_client_runs_users_and_posts_flow(
    backend: str, node: str, api_token: str, request: pytest.FixtureRequest
) -> None:
    server: LiveServer = request.getfixturevalue("live_server")
    # Into the folder's build/ (ignored by git; dist/ is the package's): Node resolves the
    # compiled tests' imports from the node_modules beside it.
    built = _tsc()
    assert built.returncode == 0, built.stdout + built.stderr
    env = {**os.environ, "API_URL": server.url, "API_KEY": api_token}

    # test/e2e.ts: create (201, Location), a typed 409 naming the field, a typed 404, an
    # empty update that does not type-check and is a 422, posts paged by passing next_cursor
    # back, an NDJSON file imported as it is (then a typed 409 naming its lines), delete.
    result = _node(node, "e2e.js", env)

    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{server.log()}"
    assert "typescript client flow passed" in result.stdout


@pytest.fixture(scope="module")
def built(node: str) -> str:
    """The package and its tests compiled into build/; node's path."""
    result = _tsc()
    assert result.returncode == 0, result.stdout + result.stderr
    return node


def test_a_typed_webhook_handler_takes_a_real_payload(
    built: str, app: Flask, client: FlaskClient
) -> None:
    # test/webhook.ts: a handler typed by the document's webhooks section (WebhookPayload,
    # a union narrowed by type; an unknown type does not compile), fed what a delivery of
    # this backend's own event carries.
    created = client.post("/webhooks", json={"url": PUBLIC_HOOK_URL, "events": ["*"]})
    assert created.status_code == 201
    webhook_id = created.get_json()["id"]
    with app.app_context():
        newest = select(*EVENT_COLUMNS).order_by(AuditEvent.id.desc()).limit(1)
        body = webhook_delivery.body(db.session.execute(newest).one()).decode()

    result = _node(built, "webhook.js", {**os.environ, "PAYLOAD": body})

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"webhook.created webhook {webhook_id} by api_key"]
