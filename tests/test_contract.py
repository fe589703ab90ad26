"""The served OpenAPI document is valid, and the API keeps to it under generated traffic.

- The document validates (openapi-spec-validator) and names every operation uniquely.
- Schemathesis, in-process on each backend (one subtest per operation): every operation
  with examples, coverage and fuzzed cases, positive and negative, under every check (no
  5xx; status code, content type, headers and body as documented; valid data accepted,
  invalid data rejected; auth enforced; deleted resources gone), positive_data_acceptance
  as adapted in the hooks; then its stateful phase, chaining operations over the links it
  infers (201 bodies' ids into the item paths, and so on).
- The schemathesis CLI against gunicorn (scripts/contract_cli.sh), bounded.

scripts/schemathesis_hooks.py sets the generation up for this API (emails pydantic
accepts, import files, opaque cursors) for both runs.
"""

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from openapi_spec_validator import validate
from schemathesis import Case, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.schemas import BaseSchema

import scripts.schemathesis_hooks  # noqa: F401 - registers strategies and the check
from app import create_app
from app.config import Settings
from app.db.session import db
from app.web.auth import BEARER_SCHEME
from tests.helpers import LiveServer

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Per operation and generation phase; the coverage phase adds its own boundary cases.
MAX_EXAMPLES = 25
STATEFUL_SCENARIOS = 25
STATEFUL_STEPS = 10
CLI_MAX_EXAMPLES = 10
CLI_TIMEOUT = 300
SENSITIVE_MARKERS = ["token", "key", "secret", "password", "session", "passwd", "credential"]


def _config(
    headers: dict[str, str] | None = None, *, bearer: str | None = None
) -> SchemathesisConfig:
    checks: dict[str, Any] = {
        # Replaced by positive_data_acceptance_opaque_cursor (scripts/schemathesis_hooks.py).
        "positive_data_acceptance": {"enabled": False},
    }
    # A key given as the security scheme's credentials, not as a raw header, is what the
    # ignored_auth check knows for explicit: with a raw header, the stateful phase read a
    # 2xx to an operation with header parameters of its own (If-Match: *) as "accepts
    # generated credentials".
    auth = {"openapi": {BEARER_SCHEME: {"bearer": bearer}}} if bearer else {}
    return SchemathesisConfig.from_dict(
        {
            "headers": headers or {},
            "auth": auth,
            # Not "auth": that marker would hide author_id values in failure reports.
            "output": {"sanitization": {"sensitive-markers": SENSITIVE_MARKERS}},
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "database": "none",
                # The database outlives each example, so a replay is not the same request
                # twice: shrinking would report a flaky test instead of the failure.
                "no-shrink": True,
            },
            "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
            "checks": checks,
        }
    )


@pytest.fixture(scope="module")
def document() -> Iterator[dict[str, Any]]:
    """The served document, from a database-less app: the document depends on the code only.

    test_tested_document_is_the_served_one holds each backend's app to the same document.
    """
    document_app = create_app(Settings(DATABASE_URL="sqlite://", AUTO_MIGRATE=False))
    served: dict[str, Any] = document_app.test_client().get("/openapi.json").get_json()
    yield served
    with document_app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture(scope="module")
def document_schema(document: dict[str, Any]) -> BaseSchema:
    """The document as schemathesis' schema, under the generation config of this module."""
    return schemathesis.openapi.from_dict(document, config=_config())


@pytest.fixture
def lazy_schema_node_id(request: pytest.FixtureRequest) -> None:
    """Give the test item the ``_nodeid`` that schemathesis' lazy schema rewrites per operation.

    schemathesis 4.32.5 reads and sets ``request.node._nodeid``, which pytest 9.2 no longer has
    (it keeps the id as ``_id``); the copy only names the operation in its reports.
    """
    request.node._nodeid = request.node.nodeid


# Resolved when the test runs: one test per backend, one subtest per operation.
schema = schemathesis.pytest.from_fixture("document_schema")


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_served_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises OpenAPIValidationError


def test_every_operation_has_a_unique_operation_id(client: FlaskClient) -> None:
    operations = _operations(client.get("/openapi.json").get_json())
    assert operations
    missing = [f"{method} {path}" for method, path, op in operations if not op.get("operationId")]
    assert missing == []
    counts = Counter(op["operationId"] for _, _, op in operations)
    assert {name: n for name, n in counts.items() if n > 1} == {}


def test_tested_document_is_the_served_one(client: FlaskClient, document: dict[str, Any]) -> None:
    assert client.get("/openapi.json").get_json() == document


@pytest.mark.fuzz
@schema.parametrize()
# The lazy schema asks for the arguments' fixtures only when the test runs: named here, they
# are known at collection, so the test is parametrised over the backends as before.
@pytest.mark.usefixtures("app", "auth_headers", "lazy_schema_node_id")
# One key and one database for all of a backend's examples is the point, not an accident.
@hypothesis.settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_operation_keeps_to_the_document(
    case: Case[Any], app: Flask, auth_headers: dict[str, str]
) -> None:
    # The checks that send requests of their own (without the key, say) go to the schema's app.
    case.operation.schema.app = app
    # As in the stateful phase below: the WSGI transport asks for compressed bodies (requests'
    # default Accept-Encoding, zstd among them) but does not decode them; a page over the
    # compression threshold (GET /mail-messages after the fuzzer queued mail) then failed to
    # parse. Compression has tests of its own (tests/web).
    case.call_and_validate(app=app, headers={**auth_headers, "Accept-Encoding": "identity"})


def _link_targets(document: dict[str, Any]) -> set[tuple[str, str | None]]:
    """(source, target) operationIds of every link in the document, declared or inferred."""
    by_ref = {
        f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method.lower()}": op["operationId"]
        for method, path, op in _operations(document)
    }
    pairs = set()
    for _, _, operation in _operations(document):
        for response in operation.get("responses", {}).values():
            for link in response.get("links", {}).values():
                target = link.get("operationId") or by_ref.get(link.get("operationRef", ""))
                pairs.add((operation["operationId"], target))
    return pairs


@pytest.mark.fuzz
def test_stateful_phase_keeps_to_the_document(app: Flask, api_token: str, backend: str) -> None:
    # The scheme's credentials from the config are explicit ones to the auth checks. Its WSGI
    # transport asks for compressed bodies (requests' default Accept-Encoding) but does not
    # decode them: ask for none.
    config = _config({"Accept-Encoding": "identity"}, bearer=api_token)
    stateful = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)
    machine: Any = stateful.as_state_machine()
    # The links the state machine follows (schemathesis infers them from the schemas):
    # without these the phase would only ever see 404s for made-up ids.
    links = _link_targets(stateful.raw_schema)
    for source, target in [
        ("createUser", "getUser"),
        ("createUser", "updateUser"),
        ("createUser", "deleteUser"),
        ("createUser", "createPost"),
        ("createPost", "getPost"),
        ("createPost", "updatePost"),
        ("createPost", "deletePost"),
    ]:
        assert (source, target) in links

    failures: list[str] = []
    linked_steps = 0

    class Machine(machine):  # type: ignore[misc]
        def step(self, input: StepInput) -> StepOutput:
            nonlocal linked_steps
            linked_steps += input.transition is not None and input.is_applied
            output: StepOutput = super().step(input)
            return output

        def validate_response(self, response: Response, case: Case[Any], **kwargs: Any) -> None:
            try:
                super().validate_response(response, case, **kwargs)
            except Exception as exc:
                failures.append(str(exc))
                raise

    settings = hypothesis.settings(
        max_examples=STATEFUL_SCENARIOS,
        stateful_step_count=STATEFUL_STEPS,
        database=None,
        deadline=None,
        # No shrinking and no replays: scenarios leave rows behind (the database is shared
        # by all of them), so a replay is not the same scenario again.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    try:
        Machine.run(settings=settings)
    except hypothesis.errors.Flaky:
        # Hypothesis saw a scenario prefix turn out differently the second time (a username
        # taken since, say) and stops; as schemathesis' own runner, take that as the end of
        # the run, not as a failure. A failure seen first is reported below.
        pass
    except Exception:
        if not failures:
            raise
    assert failures == [], "\n".join(failures)
    assert linked_steps > 0, "no step followed a link"


@pytest.mark.fuzz
@pytest.mark.live
# The served contract end to end, on the embedded default and production's database; the
# in-process fuzz above covers every backend (on MariaDB too this run cost 28 s).
@pytest.mark.backends("sqlite", "postgresql", reason="the fuzz in process covers MariaDB")
def test_cli_run_against_live_server(
    live_server: LiveServer, api_token: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "API_KEY": api_token,
        "SCHEMATHESIS": str(Path(sys.executable).parent / "schemathesis"),
    }
    command = [
        "bash",
        str(ROOT / "scripts" / "contract_cli.sh"),
        live_server.url,
        str(CLI_MAX_EXAMPLES),
        str(tmp_path / "report"),
    ]
    try:
        result = subprocess.run(
            command,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis took over {CLI_TIMEOUT} s:\n{exc.stdout!r}\n{live_server.log()}")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{live_server.log()}"
