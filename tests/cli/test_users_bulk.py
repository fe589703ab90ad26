"""flask --app app users import|export: round trips, standard input and output, progress."""

import io
import json
import os
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.cli import users as users_cli
from app.db.session import db
from app.models import User
from app.services.bulk.report import MAX_REPORTED
from tests.factories import make_user
from tests.helpers import delete_users, ndjson, stored_users, user_rows


def test_cli_round_trip_and_bad_file(app: Flask, tmp_path: Path) -> None:
    for row in user_rows(50, "cli"):
        make_user(app, **row)
    before = stored_users(app)
    runner = app.test_cli_runner()
    out = tmp_path / "users.csv"
    exported = runner.invoke(args=["users", "export", str(out)])
    assert exported.exit_code == 0, exported.output
    assert "Exported 50 users" in exported.stderr
    delete_users(app)
    imported = runner.invoke(args=["users", "import", str(out)])
    assert imported.exit_code == 0, imported.output
    assert "Imported 50 users, skipped 0" in imported.stderr
    assert stored_users(app) == before
    again = runner.invoke(args=["users", "import", str(out)])
    assert again.exit_code == 1
    assert "line 2: email already exists; username already exists" in again.stderr
    skipped = runner.invoke(args=["users", "import", str(out), "--on-conflict", "skip"])
    assert skipped.exit_code == 0
    assert "Imported 0 users, skipped 50" in skipped.stderr
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(ndjson(user_rows(2, "bad")) + b"{oops\n")
    broken = runner.invoke(args=["users", "import", str(bad)])
    assert broken.exit_code == 1
    assert "Line 3: not JSON" in broken.stderr
    with app.app_context():
        count = db.session.execute(select(func.count()).select_from(User)).scalar_one()
    assert count == 50


def test_cli_reports_progress_off_a_terminal(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Off a terminal click prints a bar's label once: lines of rows and rows/s stand in.
    monkeypatch.setattr("app.cli.common.PROGRESS_EVERY", 0.0)
    monkeypatch.setattr("app.services.bulk.reading.CHUNK_ROWS", 4)
    source = tmp_path / "users.ndjson"
    source.write_bytes(ndjson(user_rows(10, "progress")))
    runner = app.test_cli_runner()
    imported = runner.invoke(args=["users", "import", str(source)])
    assert imported.exit_code == 0, imported.output
    lines = imported.stderr.splitlines()
    assert lines[0] == "Importing"
    counts = [line.split()[1] for line in lines if line.startswith("Importing: ")]
    assert counts[:3] == ["4", "8", "10"]
    assert all("rows/s" in line and "s left" in line for line in lines[1:-1])
    assert lines[-1].startswith("Imported 10 users, skipped 0, from 10 rows in ")
    exported = runner.invoke(args=["users", "export", str(tmp_path / "out.csv")])
    assert exported.exit_code == 0, exported.output
    assert "Exporting: 10 rows, " in exported.stderr
    assert "Exported 10 users to " in exported.stderr


def test_cli_reads_standard_input_and_writes_standard_output(app: Flask) -> None:
    # "-" as in a container: docker run -i ... users import - < users.csv. A pipe has no
    # size, so the bar counts rows; the data alone goes to stdout, the rest to stderr.
    runner = app.test_cli_runner()
    rows = user_rows(30, "stdio")
    csv_body = "username,email\n" + "".join(f"{r['username']},{r['email']}\n" for r in rows)
    imported = runner.invoke(args=["users", "import", "--format", "csv", "-"], input=csv_body)
    assert imported.exit_code == 0, imported.output
    assert "Imported 30 users, skipped 0, from 30 rows" in imported.stderr
    assert imported.stdout == ""
    exported = runner.invoke(args=["users", "export", "-"])
    assert exported.exit_code == 0, exported.output
    assert [json.loads(line) for line in exported.stdout.splitlines()] == rows
    assert "Exported 30 users to standard output" in exported.stderr
    again = runner.invoke(args=["users", "import", "--on-conflict", "skip", "-"], input="{oops")
    assert again.exit_code == 1
    assert again.stderr.endswith(
        "Error: standard input: Line 1: the file ends in the middle of a row. "
        "Nothing was imported.\n"
    )


def test_cli_says_how_many_skipped_lines_it_did_not_list(app: Flask, tmp_path: Path) -> None:
    rows = user_rows(MAX_REPORTED + 20, "many")
    source = tmp_path / "users.ndjson"
    source.write_bytes(ndjson(rows))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "import", str(source)]).exit_code == 0
    again = runner.invoke(args=["users", "import", "--on-conflict", "skip", str(source)])
    assert again.exit_code == 0, again.output
    listed = [line for line in again.stderr.splitlines() if line.startswith("  line ")]
    # Each line has two problems (username and email), reported on one line.
    unlisted = len(rows) - len(listed)
    assert unlisted > 0
    assert again.stderr.splitlines()[-1] == f"  ({unlisted} more skipped lines not listed)"


def test_the_size_left_is_known_for_a_regular_file_only(tmp_path: Path) -> None:
    source = tmp_path / "users.ndjson"
    source.write_bytes(b"x" * 100)
    with source.open("rb") as redirected:  # as a shell's "< file" gives standard input
        redirected.read(30)
        assert users_cli._size(redirected) == 70
    reader, writer = os.pipe()
    with os.fdopen(reader, "rb") as pipe, os.fdopen(writer, "wb"):
        assert users_cli._size(pipe) is None
    assert users_cli._size(io.BytesIO(b"x" * 100)) is None


def test_progress_off_a_terminal_follows_the_bytes_read(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.cli.common.PROGRESS_EVERY", 0.0)
    monkeypatch.setattr("app.services.bulk.reading.CHUNK_ROWS", 50)
    monkeypatch.setattr("app.services.bulk.reading.READ_SIZE", 1024)
    source = tmp_path / "users.ndjson"
    source.write_bytes(ndjson(user_rows(400, "bytes")))
    imported = app.test_cli_runner().invoke(args=["users", "import", str(source)])
    assert imported.exit_code == 0, imported.output
    shares = [
        int(line.split(", ")[2].rstrip("%"))
        for line in imported.stderr.splitlines()
        if line.startswith("Importing: ")
    ]
    assert len(shares) == 9  # one a chunk of 50 rows, and the end
    # Rows are the same size here: the share of bytes read is the share of rows, give or take
    # the one read ahead (1 KiB, 5% of the file).
    for chunk, share in enumerate(shares[:-1], start=1):
        assert abs(share - 100 * chunk * 50 / 400) <= 8, shares
    assert shares[-1] == 100


def test_cli_summary_of_one_user_is_singular(app: Flask, tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_text("username,email\nsolo,solo@example.com\n")
    imported = app.test_cli_runner().invoke(args=["users", "import", str(source)])
    assert imported.exit_code == 0, imported.output
    assert "Imported 1 user, skipped 0, from 1 row in " in imported.stderr
