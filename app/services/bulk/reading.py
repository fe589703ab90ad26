"""Reading an uploaded file: lines, then NDJSON or CSV records, in validated chunks.

A file the parser cannot read is a MalformedFileError naming the line, whatever the parser
raised; the line's content is in neither the problem nor a chained traceback.
"""

import csv
import json
import re
from collections.abc import Iterator
from typing import Any, Protocol

from pydantic import ValidationError

from app.errors import BadRequestError
from app.schemas.users import UserCreate
from app.services.bulk.judging import FIELDS, Row, reject, validated
from app.services.bulk.report import ImportReport

READ_SIZE = 1 << 20
CHUNK_ROWS = 5_000


# A cell a spreadsheet would run as a formula, after any quotes export put before it.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def csv_cell(value: str) -> str:
    """Return a value as export writes it in a CSV cell, neutralised against formulas.

    A spreadsheet runs a cell that starts with =, +, -, @, a tab or a carriage return
    (OWASP's CSV injection list) as a formula, so export puts one ' before such a value,
    which makes the cell text. The rule: a value made of any number of quotes (none
    included), then one of those characters, then anything, is written with one quote more
    in front; import (csv_value) takes exactly one off a cell of that shape that starts with
    a quote. So "=x" is written "'=x", and a name that is itself "'=x" is written "''=x": both
    come back as they were. Any other value, one that merely starts with a quote included, is
    written as it is. NDJSON is never changed.
    """
    return f"'{value}" if _FORMULA.match(value) else value


def csv_value(cell: str) -> str:
    """Return the value a CSV cell holds: one leading ' fewer where csv_cell would add one."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell, 1) else cell


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


def _json_problem(raw: bytes, error: Exception) -> str:
    # The parser's own words only where they are fixed text: an exception's message or its
    # chained traceback may quote the line, which is the user's data.
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(error, RecursionError):
        return "not JSON (nested too deeply)"
    if isinstance(error, json.JSONDecodeError):
        if not raw.endswith(b"\n"):
            return "the file ends in the middle of a row"
        return f"not JSON ({error.msg})"
    if isinstance(error, ValueError):
        # json's one other ValueError: int() refusing a number of more digits than
        # sys.get_int_max_str_digits() allows (4,300), against quadratic-time conversion.
        return "not JSON (a number too long to read)"
    return "not JSON"


def _parsed_json(number: int, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except Exception as exc:  # any failure of the parser is the file's
        problem = _json_problem(raw, exc)
    raise MalformedFileError(number, problem)


def _decoded(lines: Iterator[bytes]) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        text: str | None
        try:
            # Spreadsheets save "CSV UTF-8" with a byte order mark before the header.
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None:
            # Outside the handler: the decoder's error holds the line, the user's data.
            raise MalformedFileError(number, "not UTF-8")
        yield text


class _Source:
    """The lines csv.reader reads, remembering whether reading them raised."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.failed = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            return next(self._lines)
        except StopIteration:
            raise
        except Exception:
            self.failed = True
            raise


def _csv_records(stream: ByteStream, max_line: int) -> Iterator[tuple[int, list[str]]]:
    source = _Source(_decoded(_lines(stream, max_line)))
    reader = csv.reader(source, strict=True)
    try:
        for record in reader:
            yield reader.line_num, record
    except Exception as exc:
        # What the body's reading raised (a cut connection, a line too long) is not the
        # file's syntax: it goes on as it was.
        if source.failed:
            raise
        # csv.Error's words are fixed text; anything else the parser raised may quote the line.
        problem = f"not CSV ({exc})" if isinstance(exc, csv.Error) else "not CSV"
    else:
        return
    raise MalformedFileError(reader.line_num, problem)


def _csv_rows(stream: ByteStream, max_line: int) -> Iterator[tuple[int, Any]]:
    records = _csv_records(stream, max_line)
    _, header = next(records, (0, None))
    if header is None:
        return
    if sorted(header) != sorted(FIELDS):
        raise MalformedFileError(1, f"the header must name the columns {', '.join(FIELDS)}")
    for line, record in records:
        if not record:
            continue
        if len(record) != len(header):
            raise MalformedFileError(
                line, f"{len(record)} fields where the header has {len(header)}"
            )
        yield line, dict(zip(header, map(csv_value, record), strict=True))


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


def _judged_again(number: int, raw: bytes, report: ImportReport) -> UserCreate | None:
    # Look again the way every line once was (json.loads, then the model), so a bad line
    # gets the same verdict and message whichever parser is stricter.
    data = _parsed_json(number, raw)
    try:
        return UserCreate.model_validate(data)
    except ValidationError as error:
        reject(report, number, error)
    return None


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
        user: UserCreate | None
        try:
            user = validate_json(raw)
        except Exception:  # a ValidationError, or whatever else the parser raised: see below
            user = None
        if user is None:
            # Outside the handler, so no error of this line is chained to what follows.
            user = _judged_again(number, raw, report)
        if user is not None:
            good.append((number, user.username, user.email))
        if count == CHUNK_ROWS:
            yield count, good
            count, good = 0, []
    if count:
        yield count, good
