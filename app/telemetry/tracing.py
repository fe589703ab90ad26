"""OpenTelemetry traces of requests, SQL and asyncpg calls, when the OTEL_* variables ask.

Off by default: unless OTEL_TRACES_EXPORTER names an exporter (or an OTLP endpoint is set),
nothing of OpenTelemetry is imported or installed, so a request costs what it did. The
variables are the SDK's own and the SDK reads the rest of them (OTEL_SERVICE_NAME,
OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_PROPAGATORS) from the process
environment, as every OpenTelemetry SDK does, not from .env. ``create_app`` calls
``init_app`` in each server worker, after granian forked it: the exporter's thread and
connections belong to that process.
"""

import multiprocessing.util
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from app.config import Settings
from app.telemetry import logs
from app.telemetry.request_ids import current_request_id

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

SERVICE_NAME = "user-management-api"  # unless OTEL_SERVICE_NAME or the resource says
REQUEST_ID_ATTRIBUTE = "app.request_id"
# Only OTLP over HTTP (protobuf) is installed: no grpcio, whose threads and fork handling
# are a known trap under a pre-forking server, and a third of the wheels to install.
OTLP_PROTOCOL = "http/protobuf"


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the OTEL_* variables turn tracing on (OTEL_SDK_DISABLED=true wins)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    # The SDK's default exporter is OTLP: an endpoint alone says where to send to.
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def init_app(app: Flask, settings: Settings, provider: "TracerProvider | None" = None) -> None:
    """Trace the app into ``provider`` (tests), or as the OTEL_* variables say, or not at all."""
    if provider is None:
        if not requested():
            return
        provider = _provider_from_environment()
    _instrument(app, settings, provider)


def _provider_from_environment() -> "TracerProvider":
    # Imported here: with tracing off, none of this is loaded.
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    for name in (part.strip() for part in names.split(",")):
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    # A granian worker leaves through multiprocessing, which runs its own finalizers but
    # not atexit's: without this the spans of the last seconds would never be sent.
    multiprocessing.util.Finalize(provider, provider.shutdown, exitpriority=10)
    return provider


def _exporter(name: str) -> "SpanExporter":
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", OTLP_PROTOCOL
        )
        if protocol != OTLP_PROTOCOL:
            msg = f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only {OTLP_PROTOCOL} is installed"
            raise ValueError(msg)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        return OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, ...
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        # One span a line, so JSON logs stay one object a line (the default is indented).
        return ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
    msg = f"OTEL_TRACES_EXPORTER: {name!r} is not one of otlp, console, none"
    raise ValueError(msg)


def _instrument(app: Flask, settings: Settings, provider: "TracerProvider") -> None:
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer  # noqa: PLC0415
    from opentelemetry.instrumentation.sqlalchemy.version import __version__  # noqa: PLC0415
    from opentelemetry.metrics import NoOpMeterProvider  # noqa: PLC0415

    # Metrics are Prometheus' (app.telemetry.metrics): the instrumentors' own instruments
    # record nothing.
    meters = NoOpMeterProvider()
    # Its before_request hook starts the request's span; app.web.pipeline calls this before
    # it adds the CORS, authentication and rate-limit hooks (only the metrics timer is
    # earlier), so their SQL is inside the span too.
    FlaskInstrumentor.instrument_app(
        app,
        request_hook=_tag_request,
        tracer_provider=provider,
        meter_provider=meters,
        enable_commenter=False,
    )
    # The instrumentor's tracer on each of this app's engines, not SQLAlchemyInstrumentor:
    # that one instruments once per process and patches create_engine and Engine.connect
    # for every engine made afterwards, which would leave a second app (a test's, a
    # script's) untraced, and trace engines that are not the app's.
    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__, provider)
    in_use = meters.get_meter(__name__).create_up_down_counter("db.client.connections.usage")
    # Flask-SQLAlchemy's extension object, not app.db's: telemetry sits below the database
    # layer and imports none of it.
    with app.app_context():
        for engine in app.extensions["sqlalchemy"].engines.values():
            EngineTracer(tracer, engine, in_use)
    if settings.backend == "postgresql":
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415

        # It wraps asyncpg's Connection methods for the whole process (once): the asyncpg
        # pool's loop runs each call in a copy of the caller's context, so the span is the
        # request's child.
        AsyncPGInstrumentor().instrument(tracer_provider=provider)

    def span_ids() -> tuple[str, str] | None:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)

    logs.show_span_ids(span_ids)


def _tag_request(span: "Span", _environ: dict[str, Any]) -> None:
    # The id the response and every log line of the request carry: a trace is found by it.
    span.set_attribute(REQUEST_ID_ATTRIBUTE, current_request_id())
