"""Log lines as text or one JSON object, each with the request id, key prefix and any trace ids."""

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from app.telemetry.request_ids import current_key_prefix, current_request_id

LogFormat = Literal["text", "json"]
LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s key=%(api_key)s] %(name)s: %(message)s"
TRACED_LOG_FORMAT = (
    "%(asctime)s %(levelname)s [%(request_id)s key=%(api_key)s trace=%(trace_id)s "
    "span=%(span_id)s] %(name)s: %(message)s"
)


SpanIds = Callable[[], tuple[str, str] | None]
_base_record_factory = logging.getLogRecordFactory()
# Set by app.telemetry.tracing once tracing is on; None costs a record nothing more.
_span_ids: SpanIds | None = None


def show_span_ids(span_ids: SpanIds | None) -> None:
    """Put the current span's trace and span ids (hex) on every record made inside one."""
    global _span_ids  # noqa: PLW0603
    _span_ids = span_ids


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_record_factory(*args, **kwargs)
    record.request_id = current_request_id()
    record.api_key = current_key_prefix()
    if _span_ids is not None and (ids := _span_ids()) is not None:
        record.trace_id, record.span_id = ids
    return record


class TextFormatter(logging.Formatter):
    """LOG_FORMAT, with the trace and span ids on records made inside a span."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)
        self._traced = logging.PercentStyle(TRACED_LOG_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """Format with the trace ids when the record has them."""
        style = self._traced if hasattr(record, "trace_id") else self._style
        return style.format(record)


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time, level, logger, message, request id, key prefix, any
    trace ids and extra fields; a traceback is the ``exc_info`` string, not more lines."""

    def __init__(self, *_ignored: object) -> None:
        # logging.config passes a format, date format and style: this format is fixed.
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # Lines from outside a request (start-up, alembic, the server) carry them too.
            defaults={"request_id": "-", "api_key": "-"},
        )

    def formatTime(self, record: logging.LogRecord, _datefmt: str | None = None) -> str:  # noqa: N802
        """ISO 8601 in UTC, to the millisecond: what log shippers parse without a pattern."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _entry(record: logging.LogRecord) -> dict[str, Any]:
    # The access log's entry: the record's message as logged (app.server.access), or the
    # JSON of one from elsewhere.
    message = record.msg
    return message if isinstance(message, dict) else dict(json.loads(record.getMessage()))


class AccessJsonFormatter(JsonFormatter):
    """The access log's own JSON object (app.bridge) as the fields of a JsonFormatter line."""

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Merge the access entry in, with a short message instead of the entry as a string."""
        super().add_fields(log_record, record, message_dict)  # the entry's fields, if a dict
        entry = _entry(record)
        log_record["message"] = f"{entry.get('method')} {entry.get('path')} {entry.get('status')}"
        log_record.update(entry)


class AccessTextFormatter(TextFormatter):
    """The access log's entry (app.server.access) as a line of the text format, its request
    id and key prefix in the brackets every other line has."""

    def format(self, record: logging.LogRecord) -> str:
        """Rewrite the record from the entry, then format it as any other (without making
        the entry a string first, as logging.Formatter.format would)."""
        record.asctime = self.formatTime(record, self.datefmt)
        return self.formatMessage(record)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """Rewrite the record from the entry, then format it as any other."""
        entry = _entry(record)
        query = f"?{entry['query']}" if entry.get("query") else ""
        record.request_id = entry.get("request_id", "-")
        record.api_key = entry.get("api_key", "-")
        took = entry.get("duration_us", 0) / 1000
        record.message = (
            f"{entry.get('remote')} {entry.get('method')} {entry.get('path')}{query} "
            f"{entry.get('status')} {entry.get('bytes')} B {took:.1f} ms"
        )
        return super().formatMessage(record)


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of every line in this format."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


class DropMessages(logging.Filter):
    """Drop the records whose message starts with one of these (library noise)."""

    def __init__(self, starts: list[str] | tuple[str, ...]) -> None:
        super().__init__()
        self.starts = tuple(starts)

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep a record unless its message is one of the dropped ones."""
        return not record.getMessage().startswith(self.starts)


# Alembic's lines that every process repeats at each start (7 "setup plugin" lines a worker
# were 28 of a short session's 51): what a migration does is still logged, not its set-up.
_ALEMBIC_SET_UP = ("Context impl ", "Will assume ")
# granian's warning when the workers outnumber the CPUs, which the default sizing (2 a CPU,
# measured: app.config.settings WEB_CONCURRENCY) does on purpose.
GRANIAN_WORKERS_WARNING = "Configured number of workers appears to be higher"


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Give every log record a request id and log to stderr in this format (once per process)."""
    # A record factory, not a handler filter: every handler (granian's too) sees the id.
    logging.setLogRecordFactory(_record_with_request_id)
    root = logging.getLogger()
    root.setLevel(level.upper())
    handler = next((h for h in root.handlers if getattr(h, "_app_handler", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._app_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(formatter(log_format))
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    migration = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, DropMessages) for f in migration.filters):
        migration.addFilter(DropMessages(_ALEMBIC_SET_UP))
    if log_format == "json":
        # Python's warnings would be bare lines on stderr: make them records too.
        logging.captureWarnings(True)


def granian_log_config(*, quiet_workers_warning: bool) -> dict[str, Any]:
    """granian's log_dictconfig: its loggers (the Rust side's are their children, through
    pyo3-log) hand their records to the root handler, in the one format of LOG_FORMAT, not
    granian's own "[INFO] ..." lines beside ours."""
    # granian updates its default config with this one key by key: no handler of its own.
    drop = [GRANIAN_WORKERS_WARNING] if quiet_workers_warning else []
    return {
        "filters": {"noise": {"()": DropMessages, "starts": drop}},
        "formatters": {},
        "handlers": {},
        "loggers": {
            "_granian": {"handlers": [], "propagate": True, "filters": ["noise"]},
            "granian.access": {"handlers": [], "propagate": True},
        },
    }
