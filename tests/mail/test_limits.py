"""Requests that mail an address are limited per target address and per client address,
known or not (the same 429 for both): MAIL_LIMIT and MAIL_ADDRESS_LIMIT."""

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_user
from tests.helpers import app_with, assert_problem


@pytest.fixture
def limited(app: Flask) -> Iterator[Flask]:
    """The app with small mail budgets, counted in this app's own memory."""
    with app_with(
        app,
        MAIL_LIMIT="2/minute",
        MAIL_ADDRESS_LIMIT="5/minute",
        RATE_LIMIT_STORAGE_URL="memory://",
    ) as other:
        yield other


def _reset(client: FlaskClient, email: str) -> Any:
    return client.post("/auth/password-reset", json={"email": email})


def test_a_target_address_is_limited_in_any_letter_case_known_or_not(limited: Flask) -> None:
    make_user(limited, username="kim", email="kim@example.com")
    client = limited.test_client()
    for email in ("kim@example.com", "nobody@example.com"):
        assert _reset(client, email).status_code == 202
        assert _reset(client, email.upper()).status_code == 202
    known, unknown = _reset(client, "Kim@example.com"), _reset(client, "Nobody@example.com")
    assert_problem(known, 429)
    assert int(known.headers["Retry-After"]) > 0
    assert (known.status_code, known.get_json()["detail"]) == (
        unknown.status_code,
        unknown.get_json()["detail"],
    )


def test_a_client_address_is_limited_over_every_target(limited: Flask) -> None:
    client = limited.test_client()
    for n in range(5):
        assert _reset(client, f"spray{n}@example.com").status_code == 202
    assert_problem(_reset(client, "spray9@example.com"), 429)
