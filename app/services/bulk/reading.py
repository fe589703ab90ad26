"""Reading an uploaded file: lines, then NDJSON or CSV records, in validated chunks."""

import csv
import json
from collections.abc import Iterator
from typing import Any, Protocol

from pydantic import ValidationError

from app.errors import BadRequestError
from app.schemas.users import UserCreate
from app.services.bulk.judging import FIELDS, Row, reject, validated
from app.services.bulk.report import ImportReport

READ_SIZE = 1 << 20
CHUNK_ROWS = 5_000


class MalformedFileError(BadRequestError):
    """The file cannot be read as the format it claims (a 400, whatever the mode)."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"Line {line}: {problem}", line=line)


class ByteStream(Protocol):
    """What an import reads: a file, standard input, or a request body."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to size bytes; b"" at the end."""
        ...


def _lines(stream: ByteStream, max_line: int) -> Iterator[bytes]:
    # Big reads, split here: a WSGI input's own readline() is slow, called a million times.
    pending = b""
    number = 0
    while block := stream.read(READ_SIZE):
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        # One rule for a line with or without its newline yet: max_line bytes is too many.
        for line in lines:
            number += 1
            if len(line) >= max_line:
                raise MalformedFileError(number, f"longer than {max_line:,} bytes")
            yield line + b"\n"
        if len(pending) >= max_line:
            raise MalformedFileError(number + 1, f"longer than {max_line:,} bytes")
    if pending:
        yield pending


def _parsed_json(number: int, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise MalformedFileError(number, "not UTF-8") from exc
    except RecursionError as exc:
        raise MalformedFileError(number, "not JSON (nested too deeply)") from exc
    except json.JSONDecodeError as exc:
        if not raw.endswith(b"\n"):
            raise MalformedFileError(number, "the file ends in the middle of a row") from exc
        raise MalformedFileError(number, f"not JSON ({exc.msg})") from exc


def _decoded(lines: Iterator[bytes]) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        try:
            # Spreadsheets save "CSV UTF-8" with a byte order mark before the header.
            yield line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFileError(number, "not UTF-8") from exc


def _csv_rows(stream: ByteStream, max_line: int) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(_decoded(_lines(stream, max_line)), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        if sorted(header) != sorted(FIELDS):
            raise MalformedFileError(1, f"the header must name the columns {', '.join(FIELDS)}")
        for record in reader:
            if not record:
                continue
            if len(record) != len(header):
                raise MalformedFileError(
                    reader.line_num, f"{len(record)} fields where the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, record, strict=True))
    except csv.Error as exc:
        raise MalformedFileError(reader.line_num, f"not CSV ({exc})") from exc


def _chunks(rows: Iterator[tuple[int, Any]]) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def csv_chunks(
    stream: ByteStream, report: ImportReport, max_line: int
) -> Iterator[tuple[int, list[Row]]]:
    for chunk in _chunks(_csv_rows(stream, max_line)):
        yield len(chunk), validated(chunk, report)


def ndjson_chunks(
    stream: ByteStream, report: ImportReport, max_line: int
) -> Iterator[tuple[int, list[Row]]]:
    # One loop and one call into pydantic-core a line, which parses and validates it: the
    # per-line Python around it costs as much as the check. Each model is dropped as soon
    # as its fields are read, so the garbage collector never has thousands to walk.
    validate_json = UserCreate.__pydantic_validator__.validate_json
    count, good = 0, []
    for number, raw in enumerate(_lines(stream, max_line), start=1):
        if not raw.strip():
            continue
        count += 1
        try:
            user = validate_json(raw)
        except ValidationError:
            # Look again the way every line once was (json.loads, then the model), so a
            # bad line gets the same verdict and message whichever parser is stricter.
            try:
                user = UserCreate.model_validate(_parsed_json(number, raw))
            except ValidationError as error:
                reject(report, number, error)
                user = None
        if user is not None:
            good.append((number, user.username, user.email))
        if count == CHUNK_ROWS:
            yield count, good
            count, good = 0, []
    if count:
        yield count, good
