"""CSV export writes no cell a spreadsheet would run as a formula, and import reads it back.

The rule (app/services/bulk/reading.py, csv_cell): one ' more before a value made of any
number of quotes and then =, +, -, @, a tab or a carriage return; import takes exactly that
one off. NDJSON carries values as they are.
"""

import csv
import io
import itertools
import json

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.services.bulk.reading import csv_cell, csv_value
from tests.factories import make_user
from tests.helpers import delete_users, stored_users

CSV = "text/csv"
NDJSON = "application/x-ndjson"
FORMULA_STARTS = "=+-@\t\r"
# (username, email) as stored, and the cells export must write for them.
USERS = [
    (("=1+2", "=x@example.com"), ("'=1+2", "'=x@example.com")),
    (("+SUM(A1:A9)", "+x@example.com"), ("'+SUM(A1:A9)", "'+x@example.com")),
    (("-2+3", "-x@example.com"), ("'-2+3", "'-x@example.com")),
    (("@cmd", "at@example.com"), ("'@cmd", "at@example.com")),
    (('=HYPERLINK("http://x.test","y")', "h@example.com"), None),
    # Values that start with quotes of their own: one more only where a formula follows.
    (("'=quoted", "'=q@example.com"), ("''=quoted", "''=q@example.com")),
    (("''-twice", "t@example.com"), ("'''-twice", "t@example.com")),
    (("'plain", "'p@example.com"), ("'plain", "'p@example.com")),
    (("'", "q@example.com"), ("'", "q@example.com")),
    (("a=b", "a-b@example.com"), ("a=b", "a-b@example.com")),
]


def _cells(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))[1:]


@pytest.fixture
def formula_users(app: Flask) -> list[tuple[str, str]]:
    """The users of USERS, created; their stored (username, email)."""
    for (username, email), _ in USERS:
        make_user(app, username=username, email=email)
    return stored_users(app)


def test_csv_export_neutralises_formulas(client: FlaskClient, formula_users: object) -> None:
    exported = client.get("/users/export", headers={"Accept": CSV})
    assert exported.status_code == 200
    cells = _cells(exported.data)
    assert [cell for row in cells for cell in row if cell[:1] in FORMULA_STARTS] == []
    assert [tuple(row) for row in cells] == [
        written or (f"'{stored[0]}", stored[1]) for stored, written in USERS
    ]


@pytest.mark.parametrize("accept", [CSV, NDJSON])
def test_an_export_of_formula_names_imports_back_as_it_was(
    app: Flask, client: FlaskClient, formula_users: list[tuple[str, str]], accept: str
) -> None:
    exported = client.get("/users/export", headers={"Accept": accept})
    if accept == NDJSON:
        # NDJSON is not opened by spreadsheets: values go out untouched.
        assert [tuple(json.loads(line).values()) for line in exported.data.splitlines()] == (
            formula_users
        )
    delete_users(app)
    response = client.post("/users/import", data=exported.data, headers={"Content-Type": accept})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"created": len(USERS), "skipped": 0, "errors": []}
    assert stored_users(app) == formula_users


def test_a_csv_import_takes_off_exactly_the_quote_export_adds(
    app: Flask, client: FlaskClient
) -> None:
    body = "username,email\n'=a,'=a@example.com\n''=b,b@example.com\n'c,'c@example.com\n"
    response = client.post("/users/import", data=body.encode(), headers={"Content-Type": CSV})
    assert response.status_code == 200, response.get_json()
    assert stored_users(app) == [
        ("=a", "=a@example.com"),
        ("'=b", "b@example.com"),
        ("'c", "'c@example.com"),
    ]


def test_every_value_survives_the_cell_rule() -> None:
    # Every string of up to four of the characters the rule looks at, and one other.
    alphabet = "'=+-@\t\rx"
    values = ["".join(chars) for n in range(5) for chars in itertools.product(alphabet, repeat=n)]
    for value in values:
        cell = csv_cell(value)
        assert csv_value(cell) == value, repr(value)
        assert cell[:1] not in FORMULA_STARTS or cell == "", repr(value)
