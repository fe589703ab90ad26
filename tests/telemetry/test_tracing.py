"""OpenTelemetry traces: a request's server span, its SQL (and asyncpg) spans as children,
the request id on the span and the trace id on the request's log lines; off by default."""

import contextlib
import http.server
import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from app import create_app
from app.config import SETTINGS
from app.db.session import db
from app.telemetry import tracing
from tests.factories import make_api_key, make_user
from tests.helpers import ROOT, embedded_env, failing_statements, serving


@pytest.fixture
def traced(app: Flask) -> Iterator[tuple[Flask, InMemorySpanExporter]]:
    """Another app on the test database, tracing into memory, and its exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    other = create_app(app.extensions[SETTINGS], tracer_provider=provider)
    other.config["TESTING"] = True
    try:
        yield other, exporter
    finally:
        # asyncpg's instrumentation is the process's, not the app's: undo it for the others.
        if AsyncPGInstrumentor().is_instrumented_by_opentelemetry:
            AsyncPGInstrumentor().uninstrument()
        with other.app_context():
            for engine in db.engines.values():
                engine.dispose()


def _server_span(spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    servers = [span for span in spans if span.kind is SpanKind.SERVER]
    assert len(servers) == 1, [span.name for span in spans]
    return servers[0]


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in spans
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def test_request_traced_with_sql_child_span(
    traced: tuple[Flask, InMemorySpanExporter], auth_headers: dict[str, str]
) -> None:
    app, exporter = traced
    user = make_user(app)
    exporter.clear()

    response = app.test_client().get(
        f"/users/{user.id}", headers={**auth_headers, "X-Request-ID": "trace-me-1"}
    )

    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    assert len({span.context.trace_id for span in spans if span.context}) == 1
    server = _server_span(spans)
    attributes = server.attributes or {}
    assert attributes["http.route"] == "/users/<id:user_id>"
    assert attributes["http.status_code"] == 200
    assert attributes[tracing.REQUEST_ID_ATTRIBUTE] == "trace-me-1"
    statements = [str((span.attributes or {}).get("db.statement")) for span in spans]
    sql = [span for span in _children(spans, server) if span.kind is SpanKind.CLIENT]
    assert any(
        "user_account" in str((span.attributes or {}).get("db.statement")) for span in sql
    ), statements


def test_log_line_of_a_request_carries_its_trace_id(
    traced: tuple[Flask, InMemorySpanExporter],
    auth_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, exporter = traced
    exporter.clear()

    with failing_statements(app, "user_account"), caplog.at_level(logging.ERROR):
        response = app.test_client().get("/users", headers=auth_headers)

    assert response.status_code == 503
    server = _server_span(exporter.get_finished_spans())
    assert server.context is not None
    failed = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    assert len(failed) == 1
    assert failed[0].trace_id == format_trace_id(server.context.trace_id)  # type: ignore[attr-defined]
    assert failed[0].span_id == format_span_id(server.context.span_id)  # type: ignore[attr-defined]


@pytest.mark.postgresql_only(reason="asyncpg runs on PostgreSQL only")
def test_asyncpg_call_is_a_child_of_the_request(
    traced: tuple[Flask, InMemorySpanExporter],
) -> None:
    app, exporter = traced
    exporter.clear()

    # /readyz asks asyncpg, whose calls run on the pool's own background loop.
    assert app.test_client().get("/readyz").status_code == 200

    spans = exporter.get_finished_spans()
    server = _server_span(spans)
    children = _children(spans, server)
    assert any("alembic_version" in str((s.attributes or {}).get("db.statement")) for s in children)


def test_tracing_requested_by_the_sdks_variables() -> None:
    assert not tracing.requested({})
    assert not tracing.requested({"OTEL_SERVICE_NAME": "api"})
    assert tracing.requested({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing.requested({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.requested({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"})


def test_tracing_off_installs_nothing(tmp_path: Path) -> None:
    # A process of its own: this one has imported OpenTelemetry for the tests above.
    script = (
        "import sys\n"
        "from app import create_app\n"
        "app = create_app()\n"
        "assert not hasattr(app, '_is_instrumented_by_opentelemetry')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    env = {**embedded_env(), "INSTANCE_PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps each export's spans."""

    received: "queue.Queue[ExportTraceServiceRequest]"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.path == "/v1/traces"
        assert self.headers["Content-Type"] == "application/x-protobuf"
        self.received.put(ExportTraceServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass  # the test's output, not the server's


@pytest.mark.live
def test_shipped_server_exports_over_otlp_http(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    received: queue.Queue[ExportTraceServiceRequest] = queue.Queue()
    handler = type("Collector", (_Collector,), {"received": received})
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    try:
        with serving(
            database_url,
            tmp_path_factory,
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_SERVICE_NAME="traced-api",
            OTEL_BSP_SCHEDULE_DELAY="100",
        ) as server:
            headers = {"Authorization": f"Bearer {make_api_key(app)}", "X-Request-ID": "otlp-1"}
            assert httpx.get(f"{server.url}/users", headers=headers).status_code == 200
            spans = {}
            deadline = time.monotonic() + 10
            while "GET /users" not in spans and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    export = received.get(timeout=0.5)
                    for resource_spans in export.resource_spans:
                        service = {
                            a.key: a.value.string_value for a in resource_spans.resource.attributes
                        }["service.name"]
                        assert service == "traced-api"
                        for scope in resource_spans.scope_spans:
                            spans.update({span.name: span for span in scope.spans})
    finally:
        collector.shutdown()
        collector.server_close()

    server_span = spans["GET /users"]
    attributes = {a.key: a.value.string_value for a in server_span.attributes}
    assert attributes[tracing.REQUEST_ID_ATTRIBUTE] == "otlp-1"
