"""Rows formatted for COPY's text format come back from PostgreSQL exactly as they were."""

import pytest
from flask import Flask

from app.db import asyncpg_pool as pg
from app.db.copy_in import CopyIn
from app.services.bulk.postgres_target import copy_text

AWKWARD = [
    "plain",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\.",
    "trailing\\",
    "é ü 😀",
    "",
]


@pytest.mark.parametrize("line", [True, False])
@pytest.mark.postgresql_only("COPY is PostgreSQL's")
def test_copy_text_round_trips_every_awkward_character(
    app: Flask, backend: str, line: bool
) -> None:
    rows = [(n, value, value[::-1]) for n, value in enumerate(AWKWARD, start=1)]
    columns = ["line", "a", "b"] if line else ["a", "b"]
    with app.app_context():
        pool = pg.current_pool()
    connection = pg.run_blocking(pool.acquire())
    try:
        transaction = connection.transaction()
        pg.run_blocking(transaction.start())
        pg.run_blocking(
            connection.execute(
                "CREATE TEMPORARY TABLE copied (n serial, line bigint, a text, b text)"
            )
        )
        copy = CopyIn(connection, "copied", columns, timeout=60)
        copy.send(copy_text(rows[:4], line=line))
        copy.send(copy_text(rows[4:], line=line))
        assert copy.close() == len(rows)
        stored = pg.run_blocking(connection.fetch("SELECT line, a, b FROM copied ORDER BY n"))
        pg.run_blocking(transaction.rollback())
    finally:
        pg.run_blocking(pool.release(connection))
    expected = rows if line else [(None, a, b) for _, a, b in rows]
    assert [tuple(r) for r in stored] == expected
