"""Bad input of any shape is a 4xx problem, never a 500, and a cut upload writes nothing."""

import csv
import io
import json
import logging
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from app.db.session import db
from app.models import User
from app.services.bulk import reading
from tests.factories import make_user
from tests.helpers import assert_problem

NDJSON = "application/x-ndjson"
CSV = "text/csv"
DEEP = "[" * 5000
# Past the 4,300 digits Python's int() converts from text: json.loads raises ValueError.
HUGE_NUMBER = "1" * 5000
SECRET = "secret-line-content"


def _users(app: Flask) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(User)).scalar_one())


def _file(fmt: str, n: int, prefix: str = "cut") -> bytes:
    rows = [(f"{prefix}{i}", f"{prefix}{i}@example.com") for i in range(n)]
    if fmt == NDJSON:
        return "".join(json.dumps({"username": u, "email": e}) + "\n" for u, e in rows).encode()
    return ("username,email\n" + "".join(f"{u},{e}\n" for u, e in rows)).encode()


class _CutConnection(io.BytesIO):
    """A chunked body whose connection fails after the data: what gunicorn raises then."""

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if not data:
            raise OSError("the client closed the connection before the last chunk")
        return data

    def readinto(self, buffer: Any, /) -> int:
        n = super().readinto(buffer)
        if not n:
            raise OSError("the client closed the connection before the last chunk")
        return n


def _post_import(client: FlaskClient, fmt: str, mode: str, **body: Any) -> TestResponse:
    body.setdefault("headers", {"Content-Type": fmt})
    return client.post(f"/users/import?on_conflict={mode}", **body)


@pytest.mark.parametrize("mode", ["error", "skip"])
@pytest.mark.parametrize("fmt", [NDJSON, CSV])
def test_import_shorter_than_its_content_length_writes_nothing(
    app: Flask, client: FlaskClient, fmt: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent = _file(fmt, 2)
    # As a server that frames the body (gunicorn) hands it over: whole lines, then EOF.
    with caplog.at_level(logging.WARNING):
        response = _post_import(
            client,
            fmt,
            mode,
            input_stream=io.BytesIO(sent),
            # The test client would count the stream; a server passes on what was declared.
            environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": "100000"},
        )
    body = assert_problem(response, 400)
    assert f"{len(sent):,} of 100,000 bytes" in str(body["detail"])
    assert _users(app) == 0
    assert any("cut short" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mode", ["error", "skip"])
@pytest.mark.parametrize("fmt", [NDJSON, CSV])
def test_chunked_import_cut_before_its_last_chunk_writes_nothing(
    app: Flask, client: FlaskClient, fmt: str, mode: str
) -> None:
    response = _post_import(
        client,
        fmt,
        mode,
        input_stream=_CutConnection(_file(fmt, 20_000)),
        headers={"Content-Type": fmt, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert "connection failed" in str(assert_problem(response, 400)["detail"])
    assert _users(app) == 0


def test_whole_import_with_its_content_length_still_commits(
    app: Flask, client: FlaskClient
) -> None:
    sent = _file(NDJSON, 3)
    response = _post_import(
        client,
        NDJSON,
        "error",
        input_stream=io.BytesIO(sent),
        content_length=len(sent),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert _users(app) == 3


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/users"), ("patch", "/users/{id}"), ("put", "/users/{id}"),
     ("post", "/users/{id}/posts"), ("patch", "/posts/{post}")],
)  # fmt: skip
def test_deeply_nested_json_body_is_400(
    app: Flask, client: FlaskClient, method: str, path: str
) -> None:
    user = make_user(app)
    post = client.post(f"/users/{user.id}/posts", json={"title": "t", "body": "b"}).get_json()
    url = path.format(id=user.id, post=post["id"])
    response = getattr(client, method)(url, data=DEEP, content_type="application/json")
    assert "nested too deeply" in str(assert_problem(response, 400)["detail"])


@pytest.mark.parametrize("fmt", [NDJSON, CSV])
def test_deeply_nested_import_line_is_400_naming_it(
    app: Flask, client: FlaskClient, fmt: str
) -> None:
    line = '{"username": "a", "email": ' + DEEP + "\n"
    if fmt == CSV:
        line = f'username,email\nok,ok@example.com\nbad,"{DEEP}"\n'
        # CSV has no nesting: the field is merely not an email, a 422 naming line 3.
        response = _post_import(client, fmt, "error", data=line.encode())
        problem = assert_problem(response, 422)
        assert [e["line"] for e in problem["errors"]] == [3]  # type: ignore[attr-defined]
        return
    body = _file(NDJSON, 1) + line.encode()
    problem = assert_problem(_post_import(client, fmt, "error", data=body), 400)
    assert problem["line"] == 2
    assert _users(app) == 0


@pytest.mark.parametrize("fmt", [NDJSON, CSV])
@pytest.mark.parametrize("where", ["middle", "last"])
def test_an_import_line_over_the_limit_is_400_naming_it(
    app: Flask, client: FlaskClient, fmt: str, where: str
) -> None:
    limit = app.extensions["settings"].IMPORT_MAX_LINE_BYTES
    huge = json.dumps({"username": "x" * (limit + 10), "email": "x@example.com"})
    if fmt == CSV:
        huge = f"{'x' * (limit + 10)},x@example.com"
    good = _file(fmt, 2)
    body = good + huge.encode() + (b"\n" + _file(NDJSON, 1) if where == "middle" else b"")
    problem = assert_problem(_post_import(client, fmt, "skip", data=body), 400)
    expected_line = 3 if fmt == NDJSON else 4
    assert problem["line"] == expected_line, problem
    assert f"longer than {limit:,} bytes" in str(problem["detail"])
    assert _users(app) == 0


def test_a_line_of_100_mb_is_refused_after_reading_little_of_it(
    app: Flask, client: FlaskClient
) -> None:
    class Endless(io.RawIOBase):
        """A single line that never ends, as far as the import reads (100 MB declared)."""

        read_bytes = 0

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0, /) -> int:
            return 0  # the test client rewinds the body before the request: it is at 0

        def readinto(self, buffer: Any, /) -> int:
            n = len(buffer)
            buffer[:n] = b"x" * n
            self.read_bytes += n
            return n

    stream = Endless()
    response = _post_import(
        client,
        NDJSON,
        "error",
        input_stream=stream,
        environ_overrides={"CONTENT_LENGTH": str(100 << 20)},
    )
    assert_problem(response, 400)
    # Refused within a read or two of the limit, not after holding 100 MB.
    assert stream.read_bytes <= 4 << 20


def test_chunked_json_body_over_the_limit_is_413_like_one_with_a_length(
    app: Flask, client: FlaskClient
) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = json.dumps({"username": "a" * (limit + 1), "email": "a@example.com"}).encode()
    with_length = client.post("/users", data=big, content_type="application/json")
    assert_problem(with_length, 413)
    chunked = client.post(
        "/users",
        input_stream=io.BytesIO(big),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(chunked, 413)
    small = json.dumps({"username": "chunky", "email": "chunky@example.com"}).encode()
    accepted = client.post(
        "/users",
        input_stream=io.BytesIO(small),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert accepted.status_code == 201, accepted.get_data(as_text=True)


@pytest.mark.postgresql_only(
    "SQLite runs one writer at a time: a second waits, then is 503 (locked)"
)
def test_opposite_order_imports_are_never_an_outage(
    app: Flask, client: FlaskClient, backend: str
) -> None:
    # Two all-or-nothing imports of the same names in opposite order: on PostgreSQL their
    # COPYs wait on each other's unique keys until one is chosen as a deadlock's victim.
    names = _file(NDJSON, 20_000, prefix="race").splitlines(keepends=True)
    bodies = [b"".join(names), b"".join(reversed(names))]
    statuses: list[int] = []
    problems: list[str] = []

    def run(body: bytes) -> None:
        response = _post_import(client, NDJSON, "error", data=body)
        statuses.append(response.status_code)
        problems.append(response.get_data(as_text=True))

    threads = [threading.Thread(target=run, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) in ([200, 409], [409, 409]), problems
    assert _users(app) in {0, 20_000}


def _assert_no_traceback_nor(caplog: pytest.LogCaptureFixture, text: str) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if text in r.getMessage()] == []


@pytest.mark.parametrize("mode", ["error", "skip"])
def test_a_number_of_5000_digits_in_an_import_line_is_400_naming_it(
    app: Flask, client: FlaskClient, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    line = '{"username": "a", "email": ' + HUGE_NUMBER + "}\n"
    with caplog.at_level(logging.DEBUG):
        response = _post_import(client, NDJSON, mode, data=_file(NDJSON, 1) + line.encode())
        as_a_body = client.post("/users", data=line, content_type="application/json")
    problem = assert_problem(response, 400)
    assert problem["line"] == 2
    assert "a number too long" in str(problem["detail"])
    assert HUGE_NUMBER[:100] not in response.get_data(as_text=True)
    # The same number as a JSON body: the same status.
    assert_problem(as_a_body, 400)
    _assert_no_traceback_nor(caplog, HUGE_NUMBER[:100])
    assert _users(app) == 0


@pytest.mark.parametrize(
    "error",
    [
        ValueError(SECRET),
        RecursionError(SECRET),
        UnicodeDecodeError("utf-8", SECRET.encode(), 0, 1, SECRET),
        OverflowError(SECRET),
        LookupError(SECRET),
        TypeError(SECRET),
    ],
    ids=lambda error: type(error).__name__,
)
def test_whatever_the_json_parser_raises_an_import_line_is_400_naming_it(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    def loads(_raw: bytes) -> Any:
        raise error

    # Only the import's module sees this parser; the request's own JSON is read as ever.
    fake = SimpleNamespace(loads=loads, JSONDecodeError=json.JSONDecodeError)
    monkeypatch.setattr(reading, "json", fake)
    body = _file(NDJSON, 2) + b"{" + SECRET.encode() + b"}\n"
    with caplog.at_level(logging.DEBUG):
        response = _post_import(client, NDJSON, "skip", data=body)
    problem = assert_problem(response, 400)
    assert problem["line"] == 3
    assert SECRET not in response.get_data(as_text=True)
    _assert_no_traceback_nor(caplog, SECRET)
    assert _users(app) == 0


def test_whatever_the_csv_parser_raises_an_import_line_is_400_naming_it(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Reader:
        """csv.reader, failing as it reads the file's third line."""

        def __init__(self, lines: Iterator[str], **options: Any) -> None:
            self._reader = csv.reader(lines, **options)

        @property
        def line_num(self) -> int:
            return self._reader.line_num

        def __iter__(self) -> Iterator[list[str]]:
            return self

        def __next__(self) -> list[str]:
            record = next(self._reader)
            if self._reader.line_num == 3:
                raise LookupError(SECRET)
            return record

    monkeypatch.setattr(reading, "csv", SimpleNamespace(reader=Reader, Error=csv.Error))
    with caplog.at_level(logging.DEBUG):
        response = _post_import(client, CSV, "skip", data=_file(CSV, 3))
    problem = assert_problem(response, 400)
    assert problem["line"] == 3
    assert SECRET not in response.get_data(as_text=True)
    _assert_no_traceback_nor(caplog, SECRET)
    assert _users(app) == 0
