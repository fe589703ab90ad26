"""Bulk import and export over HTTP: round trips, all-or-nothing, skip, duplicates, bad files.

The same through the CLI (flask users import|export): tests/cli/test_users_bulk.py.
"""

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, insert, select, text
from werkzeug.test import TestResponse

from app.config import current_settings
from app.db import asyncpg_pool as pg
from app.models import User
from app.services.bulk import judging, loading, postgres_target, sqlalchemy_target
from tests.factories import make_user
from tests.helpers import assert_problem, delete_users, ndjson, stored_users, user_rows

NDJSON = "application/x-ndjson"
CSV = "text/csv"


def _import(client: FlaskClient, body: bytes, mimetype: str, mode: str = "error") -> TestResponse:
    return client.post(
        f"/users/import?on_conflict={mode}", data=body, headers={"Content-Type": mimetype}
    )


@pytest.mark.parametrize(("accept", "mimetype"), [(NDJSON, NDJSON), (CSV, CSV)])
def test_export_then_import_into_empty_database_gives_identical_rows(
    app: Flask, client: FlaskClient, accept: str, mimetype: str
) -> None:
    for row in [*user_rows(30), {"username": 'quote"comma, é', "email": "odd@example.com"}]:
        make_user(app, **row)
    before = stored_users(app)
    exported = client.get("/users/export", headers={"Accept": accept})
    assert exported.status_code == 200
    assert exported.mimetype == mimetype
    delete_users(app)
    response = _import(client, exported.data, mimetype)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"created": 31, "skipped": 0, "errors": []}
    assert stored_users(app) == before


def test_error_mode_with_one_bad_row_in_10000_writes_nothing_and_names_it(
    app: Flask, client: FlaskClient
) -> None:
    rows = user_rows(10_000)
    rows[6_789]["email"] = "not-an-address"
    response = _import(client, ndjson(rows), NDJSON)
    problem = assert_problem(response, 422)
    assert problem["created"] == 0
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert [e["line"] for e in errors] == [6_790]
    assert "email" in errors[0]["problem"]
    assert "not-an-address" not in response.get_data(as_text=True)
    assert stored_users(app) == []


def test_skip_mode_writes_the_rest_and_reports_the_bad_row(app: Flask, client: FlaskClient) -> None:
    rows = user_rows(10_000)
    rows[42]["username"] = " padded"
    response = _import(client, ndjson(rows), NDJSON, mode="skip")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["created"], body["skipped"]) == (9_999, 1)
    assert [e["line"] for e in body["errors"]] == [43]
    assert len(stored_users(app)) == 9_999


@pytest.mark.parametrize("mimetype", [NDJSON, CSV])
def test_duplicate_inside_the_file_fails_error_mode(
    app: Flask, client: FlaskClient, mimetype: str
) -> None:
    rows = [*user_rows(5), {"username": "BULK2", "email": "other@example.com"}]
    body = ndjson(rows) if mimetype == NDJSON else _csv(rows)
    problem = assert_problem(_import(client, body, mimetype), 409)
    line = 6 if mimetype == NDJSON else 7  # CSV has its header on line 1
    assert problem["errors"] == [
        {"line": line, "problem": "username repeats an earlier line of the file"}
    ]
    assert stored_users(app) == []


def test_duplicate_inside_the_file_is_skipped_in_skip_mode(app: Flask, client: FlaskClient) -> None:
    make_user(app, username="existing", email="existing@example.com")
    rows = [
        *user_rows(3),
        {"username": "Bulk1", "email": "x@example.com"},
        {"username": "new", "email": "BULK0@example.com"},
        {"username": "EXISTING", "email": "e2@example.com"},
    ]
    response = _import(client, ndjson(rows), NDJSON, mode="skip")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["created"], body["skipped"]) == (3, 3)
    assert [(e["line"], e["problem"]) for e in body["errors"]] == [
        (4, "username repeats an earlier line of the file"),
        (5, "email repeats an earlier line of the file"),
        (6, "username already exists"),
    ]
    assert [u for u, _ in stored_users(app)] == ["existing", "bulk0", "bulk1", "bulk2"]


def test_conflict_with_existing_user_fails_error_mode(app: Flask, client: FlaskClient) -> None:
    make_user(app, username="bulk1", email="taken@example.com")
    problem = assert_problem(_import(client, ndjson(user_rows(3)), NDJSON), 409)
    assert problem["errors"] == [{"line": 2, "problem": "username already exists"}]
    assert len(stored_users(app)) == 1


def _csv(rows: list[dict[str, Any]]) -> bytes:
    lines = ["username,email", *(f"{r['username']},{r['email']}" for r in rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("body", "mimetype", "line"),
    [
        (ndjson(user_rows(3)) + b'{"username": "cut", "em', NDJSON, 4),
        (ndjson(user_rows(2)) + b"{not json}\n" + ndjson(user_rows(1, "z")), NDJSON, 3),
        (ndjson(user_rows(2)) + b'{"username": "\xff\xfe"}\n', NDJSON, 3),
        (b"username,email\na,a@example.com\nb,b@example.com,extra\n", CSV, 3),
        (b"name,mail\na,a@example.com\n", CSV, 1),
        (b'username,email\n"unterminated,a@example.com\n', CSV, 2),
    ],
    ids=["truncated", "not-json", "not-utf8", "csv-extra-field", "csv-header", "csv-quote"],
)
def test_malformed_file_is_400_with_line_number_in_both_modes(
    app: Flask, client: FlaskClient, body: bytes, mimetype: str, line: int
) -> None:
    for mode in ("error", "skip"):
        problem = assert_problem(_import(client, body, mimetype, mode), 400)
        assert problem["line"] == line
    assert stored_users(app) == []


def test_import_body_larger_than_the_json_limit_is_accepted(
    app: Flask, client: FlaskClient
) -> None:
    body = ndjson(user_rows(25_000))
    assert len(body) > app.config["MAX_CONTENT_LENGTH"]
    response = _import(client, body, NDJSON)
    assert response.status_code == 200
    assert response.get_json()["created"] == 25_000


def test_import_wrong_content_type_is_415(client: FlaskClient) -> None:
    assert_problem(_import(client, b"{}", "application/json"), 415)


def test_export_unacceptable_type_is_406(client: FlaskClient) -> None:
    assert_problem(client.get("/users/export", headers={"Accept": "application/xml"}), 406)


def test_export_needs_read_scope_and_import_write_scope(anonymous_client: FlaskClient) -> None:
    assert anonymous_client.get("/users/export").status_code == 401
    assert anonymous_client.post("/users/import", data=b"", content_type=NDJSON).status_code == 401


@pytest.mark.parametrize("fmt", [NDJSON, CSV])
def test_a_byte_order_mark_before_the_first_line_is_ignored(
    app: Flask, client: FlaskClient, fmt: str
) -> None:
    rows = user_rows(2, "bom")
    body = ndjson(rows) if fmt == NDJSON else _csv(rows)
    response = _import(client, b"\xef\xbb\xbf" + body, fmt)
    assert response.status_code == 200, response.get_json()
    assert stored_users(app) == [(r["username"], r["email"]) for r in rows]


def test_error_mode_names_only_the_duplicate_in_a_later_chunk(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.services.bulk.reading.CHUNK_ROWS", 3)
    make_user(app, username="taken", email="taken@example.com")
    rows = user_rows(7)
    rows[4]["username"] = "TAKEN"  # line 5, in the second chunk
    problem = assert_problem(_import(client, ndjson(rows), NDJSON), 409)
    assert problem["errors"] == [{"line": 5, "problem": "username already exists"}]
    assert [u for u, _ in stored_users(app)] == ["taken"]


def test_a_duplicate_deep_in_a_file_spooled_to_disk_is_named(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rows a direct COPY sent are kept aside to be staged after a violation; past this
    # size they go to a temporary file, and must come back whole from there.
    monkeypatch.setattr("app.services.bulk.loading.SPOOL_MEMORY", 1024)
    rows = user_rows(40_000)  # ~1.4 MB staged, in more than one block
    rows[37_500]["email"] = rows[3]["email"].upper()  # line 37,501 repeats line 4's email
    problem = assert_problem(_import(client, ndjson(rows), NDJSON), 409)
    assert problem["errors"] == [
        {"line": 37_501, "problem": "email repeats an earlier line of the file"}
    ]
    assert stored_users(app) == []


@pytest.mark.postgresql_only("the COPY path is PostgreSQL's")
def test_database_lost_during_import_is_503(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:

    def lost(*_: Any) -> None:
        raise ConnectionResetError("connection lost")

    monkeypatch.setattr("app.services.bulk.postgres_target.PostgresTarget.load", lost)
    assert_problem(_import(client, ndjson(user_rows(3)), NDJSON), 503)
    assert stored_users(app) == []


def test_backslashes_survive_the_copy(app: Flask, client: FlaskClient) -> None:
    # COPY's text format gives backslash sequences a meaning; a username may hold them.
    names = ["back\\slash", "\\N", "\\.", "ends\\", "\\t not a tab"]
    rows = [{"username": name, "email": f"b{i}@example.com"} for i, name in enumerate(names)]
    response = _import(client, ndjson(rows), NDJSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [u for u, _ in stored_users(app)] == names


def test_lines_only_json_loads_reads_are_judged_as_before(app: Flask, client: FlaskClient) -> None:
    # pydantic-core's parser refuses both lines; json.loads reads them, as it always did:
    # the first (a byte-order mark) is a good row, the second (half a surrogate pair) a
    # bad one, not a malformed file.
    body = (
        b'\xef\xbb\xbf{"username": "bom", "email": "bom@example.com"}\n'
        b'{"username": "half\\ud800", "email": "half@example.com"}\n'
        b'{"username": "plain", "email": "plain@example.com"}\n'
    )
    response = _import(client, body, NDJSON, mode="skip")
    assert response.status_code == 200, response.get_data(as_text=True)
    body_json = response.get_json()
    assert (body_json["created"], body_json["skipped"]) == (2, 1)
    assert [e["line"] for e in body_json["errors"]] == [2]
    assert "username" in body_json["errors"][0]["problem"]
    assert [u for u, _ in stored_users(app)] == ["bom", "plain"]


@pytest.mark.postgresql_only("the COPY path is PostgreSQL's")
def test_error_mode_without_a_spare_connection_stages_then_inserts(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setattr("app.services.bulk.reading.CHUNK_ROWS", 3)
    with app.app_context():
        pool = pg.current_pool()
        # Everything the pool has but the one connection the import cannot do without.
        size = pool.settings.ASYNCPG_POOL_SIZE
        held = [pg.run_blocking(pool.acquire()) for _ in range(size - 1)]
    try:
        rows = user_rows(7)
        rows[5]["email"] = "BULK1@example.com"
        problem = assert_problem(_import(client, ndjson(rows), NDJSON), 409)
        assert problem["errors"] == [
            {"line": 6, "problem": "email repeats an earlier line of the file"}
        ]
        assert stored_users(app) == []
        response = _import(client, ndjson(user_rows(7)), NDJSON)
        assert response.get_json() == {"created": 7, "skipped": 0, "errors": []}
    finally:
        for connection in held:
            pg.run_blocking(pool.release(connection))
    assert len(stored_users(app)) == 7


# SQLite commits one writer at a time: the import's write refuses its stale read.
@pytest.mark.postgresql_only("a writer beside the import is PostgreSQL's case")
def test_skip_mode_skips_a_name_another_writer_takes_while_the_file_is_read(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    judged = judging.duplicate_lines
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    def another_writer_then_judged() -> Any:
        # After the lines are judged, before they move: another client takes one name.
        with other.begin() as conn:
            conn.execute(insert(User).values(username="BULK1", email="other@example.com"))
        return judged()

    monkeypatch.setattr("app.services.bulk.transfer.duplicate_lines", another_writer_then_judged)
    try:
        response = _import(client, ndjson(user_rows(3)), NDJSON, mode="skip")
    finally:
        other.dispose()
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "created": 2,
        "skipped": 1,
        "errors": [{"line": 0, "problem": judging.TAKEN_MEANWHILE}],
    }
    assert sorted(u for u, _ in stored_users(app)) == ["BULK1", "bulk0", "bulk2"]


@pytest.mark.parametrize("mimetype", [NDJSON, CSV])
def test_skip_mode_with_only_invalid_lines_creates_nothing_and_names_them(
    app: Flask, client: FlaskClient, mimetype: str
) -> None:
    rows = [{"username": "", "email": "nobody@example.com"}, {"username": "x", "email": "nope"}]
    body = ndjson(rows) if mimetype == NDJSON else b"username,email\n,a@example.com\nx,nope\n"
    response = _import(client, body, mimetype, mode="skip")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert (report["created"], report["skipped"]) == (0, 2)
    assert [e["line"] for e in report["errors"]] == ([1, 2] if mimetype == NDJSON else [2, 3])
    assert stored_users(app) == []


class _BodyThatFails(io.BytesIO):
    """A request body that calls ``fail`` once the import has read more than ``at`` bytes."""

    def __init__(self, data: bytes, at: int, fail: Callable[[], None]) -> None:
        super().__init__(data)
        self._at = at
        self._fail: Callable[[], None] | None = fail

    def _check(self) -> None:
        if self._fail is not None and self.tell() > self._at:
            fail, self._fail = self._fail, None
            fail()

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self._check()
        return data

    def readinto(self, buffer: Any, /) -> int:
        n = super().readinto(buffer)
        self._check()
        return n


@pytest.mark.postgresql_only("the COPY path is PostgreSQL's")
def test_connection_lost_mid_copy_stops_reading_and_is_503(
    app: Flask, client: FlaskClient, backend: str
) -> None:
    data = ndjson(user_rows(150_000))
    admin = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    def kill_the_copies() -> None:
        with admin.begin() as conn:
            killed = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'COPY %'"
                )
            ).all()
        assert killed  # the COPY into user_account (and any other COPY of the import)

    body = _BodyThatFails(data, 1 << 20, kill_the_copies)
    try:
        response = client.post(
            "/users/import",
            input_stream=body,
            content_length=len(data),
            headers={"Content-Type": NDJSON},
        )
    finally:
        admin.dispose()
    assert_problem(response, 503)
    # The loss was noticed within a few chunks, not after reading the whole body.
    assert body.tell() <= 3 << 20 < len(data)
    assert stored_users(app) == []
    # The dead connections left the pool: the next import works.
    assert _import(client, ndjson(user_rows(3)), NDJSON).status_code == 200


def test_malformed_line_deep_in_a_big_file_is_400_and_leaves_nothing_behind(
    app: Flask, client: FlaskClient
) -> None:
    # Tens of thousands of rows are on their way to the database when the bad line comes.
    lines = ndjson(user_rows(60_000)).splitlines(keepends=True)
    lines[45_000] = b"{oops\n"
    problem = assert_problem(_import(client, b"".join(lines), NDJSON), 400)
    assert problem["line"] == 45_001
    assert stored_users(app) == []
    response = _import(client, ndjson(user_rows(3, "after")), NDJSON)
    assert response.get_json() == {"created": 3, "skipped": 0, "errors": []}


def test_an_import_leaves_the_event_loop_free(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The test app runs asyncio in debug mode, which reports any coroutine step of 0.1 s or
    # more; an import of this size takes longer than that, so it must run off the loop.
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        response = _import(client, ndjson(user_rows(30_000)), NDJSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert not [r.getMessage() for r in caplog.records if r.name == "asyncio"]


@pytest.mark.backends("sqlite", "mysql", reason="the targets that run on the app's engine")
@pytest.mark.parametrize("direct", [True, False])
def test_a_rolled_back_import_keeps_nothing_it_wrote(app: Flask, direct: bool) -> None:
    # MariaDB commits the open transaction on a plain DROP TABLE, even of a temporary table:
    # the scratch tables are dropped as temporary ones, or this row would be kept.
    with app.app_context(), sqlalchemy_target.SqlAlchemyTarget(direct=direct) as target:
        target.load([(1, "kept", "kept@example.com")])
        target.end_load()
        target.execute(insert(User).values(username="moved", email="moved@example.com"))
    assert stored_users(app) == []


def _target(direct: bool) -> loading.Target:
    if current_settings().backend == "postgresql":
        return postgres_target.PostgresTarget(direct=direct)
    return sqlalchemy_target.SqlAlchemyTarget(direct=direct)


@pytest.mark.parametrize("direct", [True, False])
def test_a_target_takes_its_calls_in_order_and_refuses_the_rest(app: Flask, direct: bool) -> None:
    rows = [(1, "first", "first@example.com"), (2, "second", "second@example.com")]
    with app.app_context():
        target = _target(direct)
        with pytest.raises(RuntimeError, match="outside its with block"):
            target.load(rows)
        with target:
            target.load(rows[:1])
            with pytest.raises(RuntimeError, match="end_load"):
                target.fetch(select(User.id))
            with pytest.raises(RuntimeError, match="end_load"):
                _ = target.created_directly
            with pytest.raises(RuntimeError, match="end_load"):
                target.commit()
            target.load(rows[1:])  # none of the refused calls ended the load
            target.end_load()
            target.end_load()  # a second time, nothing
            with pytest.raises(RuntimeError, match="load has ended"):
                target.load([(3, "late", "late@example.com")])
            created = target.created_directly
            assert created == target.created_directly  # reading it changes nothing
            assert created == (len(rows) if direct else None)
            if created is None:
                target.execute(judging.classify())
                assert target.fetch(judging.duplicate_lines()) == []
                assert target.execute(loading.move_rows(current_settings().backend)) == len(rows)
            target.commit()
            with pytest.raises(RuntimeError, match="after commit"):
                target.fetch(select(User.id))
    assert stored_users(app) == [(u, e) for _, u, e in rows]


@pytest.mark.postgresql_only("the connections are the asyncpg pool's")
@pytest.mark.parametrize("direct", [True, False])
def test_leaving_a_target_by_an_error_keeps_nothing_and_gives_its_connections_back(
    app: Flask, backend: str, direct: bool
) -> None:
    with app.app_context():
        pool = pg.current_pool()
        in_use = pool.stats()[1]

        def load_then_fail() -> None:
            with postgres_target.PostgresTarget(direct=direct) as target:
                target.load([(1, "lost", "lost@example.com")])
                assert pool.stats()[1] == in_use + (2 if direct else 1)
                raise ConnectionResetError("connection lost")

        with pytest.raises(ConnectionResetError):
            load_then_fail()
        assert pool.stats()[1] == in_use
    assert stored_users(app) == []
