"""Sign-in refusals tell nothing apart, and a stale password hash is replaced on sign-in."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import update

from app.db.session import db
from app.models import User
from app.services import passwords
from tests.factories import make_user, set_password
from tests.helpers import counting_statements

PASSWORD = "correct horse battery staple"


def test_the_four_refusals_are_one_answer_after_the_same_work(
    app: Flask, anonymous_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_password(app, make_user(app, username="ann", email="ann@example.com").id, PASSWORD)
    make_user(app, username="bob", email="bob@example.com")  # no password
    cy = make_user(app, username="cy", email="cy@example.com")
    set_password(app, cy.id, PASSWORD, active=False)
    cases = {
        "unknown user": ("nobody", PASSWORD),
        "wrong password": ("ann", "wrong horse battery staple"),
        "no password": ("bob", PASSWORD),
        "deactivated": ("cy", PASSWORD),
    }
    # Timing: each refusal verifies exactly one Argon2 hash (a dummy one where none is stored).
    verified: list[str] = []
    hasher = passwords._HASHER
    for name in ("verify", "verify_and_update"):
        real = getattr(hasher, name)

        def counting(*args: Any, _real: Any = real, _name: str = name) -> Any:
            verified.append(_name)
            return _real(*args)

        monkeypatch.setattr(hasher, name, counting)
    answers = {}
    for case, (username, password) in cases.items():
        verified.clear()
        response = anonymous_client.post(
            "/auth/sessions", json={"username": username, "password": password}
        )
        assert response.status_code == 401, case
        answers[case] = (
            response.get_data(),
            response.headers["WWW-Authenticate"],
            response.mimetype,
        )
        assert len(verified) == 1, (case, verified)
    assert len(set(answers.values())) == 1, answers
    assert b"password" in answers["unknown user"][0]  # the one wording: "username or password"
    # The password that was right for the deactivated user is refused, not merely unchecked.
    set_password(app, cy.id, PASSWORD, active=True)
    signed_in = anonymous_client.post(
        "/auth/sessions", json={"username": "cy", "password": PASSWORD}
    )
    assert signed_in.status_code == 201


def test_a_hash_of_old_parameters_is_replaced_at_sign_in(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    user = make_user(app, username="ann", email="ann@example.com")
    old = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),))
    with app.app_context():
        db.session.execute(
            update(User).where(User.id == user.id).values(password_hash=old.hash(PASSWORD))
        )
        db.session.commit()

    response = anonymous_client.post(
        "/auth/sessions", json={"username": "ann", "password": PASSWORD}
    )

    assert response.status_code == 201
    with app.app_context():
        stored = db.session.get(User, user.id)
        assert stored is not None
        assert stored.password_hash is not None
        assert f"m={passwords.MEMORY_COST_KIB},t={passwords.TIME_COST}" in stored.password_hash
        assert stored.version == user.version  # not a change of the representation
    again = anonymous_client.post("/auth/sessions", json={"username": "ann", "password": PASSWORD})
    assert again.status_code == 201


def test_a_password_is_never_echoed_in_a_refusal(anonymous_client: FlaskClient) -> None:
    secret = "my very secret passphrase"
    response = anonymous_client.post(
        "/auth/sessions", json={"username": "nobody", "password": secret, "extra": 1}
    )
    assert response.status_code == 422
    assert secret not in response.get_data(as_text=True)


def test_a_sign_in_past_the_hashing_admission_is_refused_before_any_lookup(
    app: Flask, anonymous_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user(app)
    set_password(app, user.id, "correct horse battery staple")
    full = passwords.Hashing(threads=1, admitted=1)
    monkeypatch.setattr(passwords, "hashing", full)
    body = {"username": user.username, "password": "correct horse battery staple"}
    with full.admit(), counting_statements(app) as statements:
        refused = anonymous_client.post("/auth/sessions", json=body)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert statements == []
    assert anonymous_client.post("/auth/sessions", json=body).status_code == 201
