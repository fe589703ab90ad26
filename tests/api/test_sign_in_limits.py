"""Sign-in attempts are limited per account name and per client address: 429, Retry-After."""

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_user, set_password
from tests.helpers import app_with, assert_problem

PASSWORD = "correct horse battery staple"


@pytest.fixture
def limited(app: Flask) -> Iterator[Flask]:
    """The app with small sign-in budgets, counted in this app's own memory."""
    with app_with(
        app,
        SIGN_IN_LIMIT="3/minute",
        SIGN_IN_ADDRESS_LIMIT="5/minute",
        RATE_LIMIT_STORAGE_URL="memory://",
    ) as other:
        yield other


def _sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> Any:
    return client.post("/auth/sessions", json={"username": name, "password": password})


def _assert_too_many(response: Any) -> None:
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_an_accounts_attempts_are_limited_whatever_the_letter_case(limited: Flask) -> None:
    for name in ("ann", "bob"):
        user = make_user(limited, username=name, email=f"{name}@example.com")
        set_password(limited, user.id, PASSWORD)
    client = limited.test_client()

    for name in ("ann", "Ann", "ANN"):
        assert_problem(_sign_in(client, name, "wrong password here"), 401)

    # The right password too: the budget is the name's, spent by the guesses.
    _assert_too_many(_sign_in(client, "aNn"))
    # Another account from the same address is not locked with it.
    assert _sign_in(client, "bob").status_code == 201


def test_an_addresss_attempts_are_limited_over_every_name(limited: Flask) -> None:
    user = make_user(limited, username="ann", email="ann@example.com")
    set_password(limited, user.id, PASSWORD)
    client = limited.test_client()

    for n in range(5):
        assert_problem(_sign_in(client, f"nobody{n}"), 401)

    _assert_too_many(_sign_in(client, "ann"))
    elsewhere = limited.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert _sign_in(elsewhere, "ann").status_code == 201


def test_sign_in_is_unlimited_when_the_limits_are_empty(app: Flask) -> None:
    with app_with(app, SIGN_IN_LIMIT="", SIGN_IN_ADDRESS_LIMIT="") as unlimited:
        client = unlimited.test_client()
        for _ in range(12):
            assert_problem(_sign_in(client, "nobody"), 401)
