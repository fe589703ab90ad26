"""Bulk import and export of users: streamed, validated like POST /users, loaded in bulk.

Rows are parsed and validated in chunks as they arrive (a file is never held whole), then
loaded into a temporary staging table: by one streamed COPY through asyncpg on PostgreSQL
(which in error mode also copies them straight into user_account), by executemany on
SQLite. SQL then judges each staged line once (a repeat of an earlier line of the file or
of an existing user, case-insensitively), reports from that and moves the rest into
user_account, in the same transaction: ``error`` mode writes all or nothing, ``skip``
mode writes the rest.
"""

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any, Literal

import asyncpg
from sqlalchemy import Result, select
from sqlalchemy.exc import IntegrityError

from app.config import Backend, current_settings
from app.db.deadlines import bulk_deadlines
from app.db.session import db
from app.errors import UnprocessableError
from app.models import User
from app.services import events
from app.services.bulk.judging import FIELDS, TAKEN_MEANWHILE, classify, duplicate_lines
from app.services.bulk.loading import Target, move_rows
from app.services.bulk.postgres_target import PostgresTarget
from app.services.bulk.reading import ByteStream, csv_cell, csv_chunks, ndjson_chunks
from app.services.bulk.report import MAX_REPORTED, ImportReport
from app.services.bulk.sqlalchemy_target import SqlAlchemyTarget
from app.telemetry import metrics

Format = Literal["ndjson", "csv"]
Mode = Literal["error", "skip"]
MIMETYPES: dict[str, Format] = {
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "text/csv": "csv",
}


class ImportRejectedError(UnprocessableError):
    """error mode found bad or duplicate rows: nothing was written."""

    def __init__(self, report: ImportReport) -> None:
        problems = [problem.model_dump() for problem in report.errors]
        super().__init__(
            "Nothing was imported: some rows are invalid or duplicates (see errors). "
            "Fix them, or import with on_conflict=skip to write the others.",
            created=0,
            skipped=report.skipped,
            errors=problems,
        )


class ImportConflictError(ImportRejectedError):
    """error mode found rows that repeat each other or existing users: nothing was written."""

    status = HTTPStatus.CONFLICT


def _move(target: Target, backend: Backend, mode: Mode, report: ImportReport) -> int:
    """Insert the judged lines; in skip mode, also skip names another writer took meanwhile."""
    if mode == "error":
        return target.execute(move_rows(backend))
    moved = target.execute_unless_taken(move_rows(backend))
    if moved is None:
        # Another writer took a name of the file while it was read: those rows are skipped
        # like the others, by the unique indexes this time, which do not say which lines.
        moved = target.execute(move_rows(backend, skip_conflicts=True))
        report.note(0, TAKEN_MEANWHILE)
    return moved


def import_users(
    stream: ByteStream,
    fmt: Format,
    mode: Mode = "error",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a stream of users; raise MalformedFileError or ImportRejectedError (error mode)."""
    started = time.perf_counter()
    try:
        report = _import_users(stream, fmt, mode, progress)
    except ImportRejectedError as rejected:
        metrics.imported(0, rejected.extensions["skipped"], time.perf_counter() - started)
        raise
    metrics.imported(report.created, report.skipped, time.perf_counter() - started)
    return report


def _import_users(
    stream: ByteStream, fmt: Format, mode: Mode, progress: Callable[[int], None] | None
) -> ImportReport:
    report = ImportReport()
    settings = current_settings()
    read = ndjson_chunks if fmt == "ndjson" else csv_chunks
    chunks = read(stream, report, settings.IMPORT_MAX_LINE_BYTES)
    all_or_nothing = mode == "error"
    target: Target = (
        PostgresTarget(direct=all_or_nothing)
        if settings.backend == "postgresql"
        else SqlAlchemyTarget(direct=all_or_nothing)
    )
    # Whatever the block leaves without commit(), by an exception or a return, is rolled back.
    with target:
        for count, good in chunks:
            if progress is not None:
                progress(count)
            report.rows += count
            if mode == "error" and report.invalid:
                if len(report.errors) >= MAX_REPORTED:
                    break
                continue  # keep reading to list more problems, but write nothing
            target.load(good)
        if mode == "error" and report.invalid:
            report.skipped = report.rows
            raise ImportRejectedError(report)
        target.end_load()
        if target.created_directly is not None:
            report.created = target.created_directly
            target.commit(_imported(report))
            return report
        target.execute(classify())
        duplicates = target.fetch(duplicate_lines())
        if mode == "error" and duplicates:
            for line, why in sorted(duplicates):
                report.note(int(line), str(why))
            report.skipped = report.rows
            raise ImportConflictError(report)
        try:
            report.created = _move(target, settings.backend, mode, report)
        except (IntegrityError, asyncpg.UniqueViolationError) as exc:
            # Someone else took a username or email of the file while it was read.
            report.note(0, TAKEN_MEANWHILE)
            report.skipped = report.rows
            raise ImportConflictError(report) from exc
        problems = [(e.line, e.problem) for e in report.errors]
        report.errors = []
        for line, why in sorted([*problems, *((int(n), str(w)) for n, w in duplicates)]):
            report.note(line, why)
        report.skipped = report.rows - report.created
        target.commit(_imported(report))
    return report


def _imported(report: ImportReport) -> dict[str, Any] | None:
    """The import's one event, with its counts (each a [before, after] pair, from nothing)."""
    if not events.RECORDING:
        return None
    skipped = report.rows - report.created
    counts = {"rows": [None, report.rows], "created": [None, report.created]}
    return events.values("users.imported", "user", None, {**counts, "skipped": [None, skipped]})


def database_answers() -> None:
    """Take a connection and run the simplest statement: raise as any statement would."""
    db.session.execute(select(1))


def export_users(fmt: Format) -> Iterator[bytes]:
    """Yield every user as NDJSON lines or CSV rows (what import takes), in id order.

    A server-side cursor (yield_per) keeps memory flat however many users there are. CSV
    cells a spreadsheet would run as formulas are written as text (reading.csv_cell says
    how), which import reads back as they were.
    """
    stmt = select(User.username, User.email).order_by(User.id)
    settings = current_settings()
    connection = db.session.connection()
    # Between fetches the transaction idles while a client reads: bulk deadlines.
    bulk_deadlines(connection, settings)
    result = db.session.execute(stmt, execution_options={"yield_per": 2_000})
    # Closed however the stream ends (a reader gone mid-way closes this generator): the
    # server-side cursor goes with it, not with the garbage collector.
    with result:
        yield from _written(result, fmt)


def _written(result: Result[str, str], fmt: Format) -> Iterator[bytes]:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(FIELDS)
        for partition in result.partitions():
            writer.writerows((csv_cell(username), csv_cell(email)) for username, email in partition)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()
        return
    for partition in result.partitions():
        yield "".join(
            json.dumps({"username": u, "email": e}, ensure_ascii=False) + "\n" for u, e in partition
        ).encode()
