"""The mail flows end to end on every backend: the request queues a message, the worker's
duty sends it to a real SMTP server (aiosmtpd in process), the link is followed, the flow
completes, and the same link replayed is a 400."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.db.session import db
from app.mailsink import Sink
from app.models import AuditEvent, MailMessage, MailToken, User, UserSession
from app.models.outbox import SENT
from app.services import passwords
from tests.factories import make_user, set_password
from tests.helpers import assert_problem
from tests.mail.helpers import (
    PASSWORD,
    link_in,
    received,
    reset_confirmation,
    signed_in_user,
    token_of,
)

NEW_PASSWORD = "a new and longer passphrase"
Deliver = Callable[[], int]


def _sign_in(client: FlaskClient, login: str, password: str) -> int:
    return client.post("/auth/sessions", json={"username": login, "password": password}).status_code


def _reset(client: FlaskClient, email: str) -> None:
    response = client.post("/auth/password-reset", json={"email": email})
    assert response.status_code == 202
    assert response.get_json() == {"status": "accepted"}


def _confirm_reset(client: FlaskClient, token: str, password: str = NEW_PASSWORD) -> int:
    return reset_confirmation(client, token, password)


def _live_sessions(app: Flask, user_id: int) -> int:
    with app.app_context():
        rows = db.session.execute(
            select(UserSession.id).where(
                UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
            )
        ).all()
        db.session.rollback()
        return len(rows)


def test_an_invitation_sets_the_first_password_once(
    app: Flask,
    client: FlaskClient,
    anonymous_client: FlaskClient,
    smtp_sink: tuple[Sink, int],
    deliver: Deliver,
) -> None:
    user = make_user(app, username="ivy", email="ivy@example.com")
    response = client.post(f"/users/{user.id}/invitation")
    assert response.status_code == 202
    assert received(smtp_sink[0], "ivy@example.com") == []  # the request sent nothing
    assert deliver() == 1
    [message] = received(smtp_sink[0], "ivy@example.com")
    assert message["subject"] == "You are invited: set your password"
    token = token_of(link_in(message), "/invitation")
    body = {"token": token, "password": PASSWORD}
    assert anonymous_client.post("/auth/invitations/accept", json=body).status_code == 204
    assert _sign_in(anonymous_client, "ivy", PASSWORD) == 201
    replay = anonymous_client.post("/auth/invitations/accept", json=body)
    assert_problem(replay, 400)
    with app.app_context():
        types = db.session.execute(
            select(AuditEvent.type, AuditEvent.changes).where(
                AuditEvent.resource_id == str(user.id)
            )
        ).all()
        hashes = db.session.execute(select(MailToken.token_hash)).scalars().all()
        state = db.session.execute(select(MailMessage.state)).scalar_one()
    assert ("user.invited", {}) in [tuple(t) for t in types]
    assert "user.password_changed" in [t.type for t in types]
    assert token not in str(types)  # never in events
    assert token not in hashes  # stored hashed
    assert state == SENT


def test_an_invitation_of_an_unknown_user_is_404(client: FlaskClient) -> None:
    assert_problem(client.post("/users/999999/invitation"), 404)


def test_a_reset_sets_a_new_password_and_revokes_every_session(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    user = make_user(app, username="rosa", email="Rosa@Example.com")
    set_password(app, user.id, PASSWORD)
    assert _sign_in(anonymous_client, "rosa", PASSWORD) == 201
    assert _sign_in(anonymous_client, "rosa", PASSWORD) == 201
    _reset(anonymous_client, "rosa@example.com")  # any letter case
    assert deliver() == 1
    [message] = received(smtp_sink[0], "Rosa@example.com")  # to the address as stored
    token = token_of(link_in(message), "/password-reset")
    assert _live_sessions(app, user.id) == 2
    assert _confirm_reset(anonymous_client, token) == 204
    assert _live_sessions(app, user.id) == 0
    assert _sign_in(anonymous_client, "rosa", PASSWORD) == 401
    assert _sign_in(anonymous_client, "rosa", NEW_PASSWORD) == 201
    assert _confirm_reset(anonymous_client, token, PASSWORD) == 400


def test_a_reset_for_an_unknown_address_answers_alike_and_sends_nothing(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    make_user(app, username="known", email="known@example.com")
    known = anonymous_client.post("/auth/password-reset", json={"email": "known@example.com"})
    unknown = anonymous_client.post("/auth/password-reset", json={"email": "nobody@example.com"})
    assert (known.status_code, known.data) == (unknown.status_code, unknown.data)
    assert deliver() == 1
    assert [m["rcpt_to"] for m in smtp_sink[0].list()] == [["known@example.com"]]
    with app.app_context():  # the unknown address's row is dropped, not kept
        left = db.session.execute(select(MailMessage.recipient)).scalars().all()
    assert left == ["known@example.com"]


def test_a_deactivated_user_gets_no_reset(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    user = make_user(app, username="gone", email="gone@example.com")
    set_password(app, user.id, PASSWORD, active=False)
    _reset(anonymous_client, "gone@example.com")
    assert deliver() == 0
    assert smtp_sink[0].list() == []


def test_a_newer_token_supersedes_the_older_one(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    make_user(app, username="sam", email="sam@example.com")
    _reset(anonymous_client, "sam@example.com")
    deliver()
    _reset(anonymous_client, "sam@example.com")
    deliver()
    first, second = (
        token_of(link_in(m), "/password-reset") for m in received(smtp_sink[0], "sam@example.com")
    )
    assert _confirm_reset(anonymous_client, first) == 400
    assert _confirm_reset(anonymous_client, second) == 204


def test_an_expired_token_is_the_same_400(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    make_user(app, username="exp", email="exp@example.com")
    _reset(anonymous_client, "exp@example.com")
    deliver()
    token = token_of(link_in(received(smtp_sink[0], "exp@example.com")[0]), "/password-reset")
    with app.app_context():
        db.session.execute(
            update(MailToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
    expired = anonymous_client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    unknown = anonymous_client.post(
        "/auth/password-reset/confirm", json={"token": "x" * 43, "new_password": NEW_PASSWORD}
    )
    assert assert_problem(expired, 400)["detail"] == assert_problem(unknown, 400)["detail"]


@pytest.mark.parametrize(
    ("path", "field"),
    [("/auth/password-reset/confirm", "new_password"), ("/auth/invitations/accept", "password")],
)
def test_a_made_up_token_is_refused_before_any_hashing(
    anonymous_client: FlaskClient, monkeypatch: pytest.MonkeyPatch, path: str, field: str
) -> None:
    # Anyone may post here: a made-up token must cost a lookup, not an Argon2 hash.
    hashed: list[str] = []
    monkeypatch.setattr(passwords, "hash_password", hashed.append)
    response = anonymous_client.post(path, json={"token": "x" * 43, field: NEW_PASSWORD})
    assert str(assert_problem(response, 400)["detail"]).startswith("The link is not valid")
    assert hashed == []


def test_a_token_of_one_purpose_does_not_serve_another(
    app: Flask, client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    user = make_user(app, username="pat", email="pat@example.com")
    client.post(f"/users/{user.id}/invitation")
    deliver()
    token = token_of(link_in(received(smtp_sink[0], "pat@example.com")[0]), "/invitation")
    assert _confirm_reset(client, token) == 400


def test_links_come_from_public_url_never_from_the_host_header(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    make_user(app, username="hal", email="hal@example.com")
    response = anonymous_client.post(
        "/auth/password-reset",
        json={"email": "hal@example.com"},
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert response.status_code == 202
    deliver()
    [message] = received(smtp_sink[0], "hal@example.com")
    assert "evil.example" not in message["text"] + message["html"]
    token_of(link_in(message), "/password-reset")  # on PUBLIC_URL


def test_an_email_change_waits_for_the_new_address_and_tells_the_old(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    headers = signed_in_user(app, anonymous_client, "eve")
    changed = anonymous_client.patch("/me", json={"email": "eve@new.example"}, headers=headers)
    assert changed.status_code == 200
    assert changed.get_json()["email"] == "eve@example.com"  # not yet
    assert deliver() == 1
    [message] = received(smtp_sink[0], "eve@new.example")
    token = token_of(link_in(message), "/email-verification")
    confirm = anonymous_client.post("/auth/email-verification/confirm", json={"token": token})
    assert confirm.status_code == 204
    assert anonymous_client.get("/me", headers=headers).get_json()["email"] == "eve@new.example"
    assert deliver() == 1
    [notice] = received(smtp_sink[0], "eve@example.com")
    assert notice["subject"] == "Your email address was changed"
    assert "eve@new.example" in notice["text"]
    replay = anonymous_client.post("/auth/email-verification/confirm", json={"token": token})
    assert_problem(replay, 400)


def test_signup_is_off_by_default(
    app: Flask, anonymous_client: FlaskClient, mail_settings: Callable[..., None]
) -> None:
    mail_settings(SIGNUP="off")
    body = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD}
    assert_problem(anonymous_client.post("/auth/signup", json=body), 404)


def test_signup_when_open_verifies_the_address_before_sign_in(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    body = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD}
    response = anonymous_client.post("/auth/signup", json=body)
    assert response.status_code == 202
    assert _sign_in(anonymous_client, "newbie", PASSWORD) == 401  # not verified yet
    assert deliver() == 1
    [message] = received(smtp_sink[0], "newbie@example.com")
    token = token_of(link_in(message), "/email-verification")
    confirm = anonymous_client.post("/auth/email-verification/confirm", json={"token": token})
    assert confirm.status_code == 204
    assert _sign_in(anonymous_client, "newbie", PASSWORD) == 201
    replay = anonymous_client.post("/auth/email-verification/confirm", json={"token": token})
    assert_problem(replay, 400)


def test_signup_with_a_taken_address_answers_alike_and_tells_its_owner(
    app: Flask, anonymous_client: FlaskClient, smtp_sink: tuple[Sink, int], deliver: Deliver
) -> None:
    make_user(app, username="owner", email="taken@example.com")
    fresh = anonymous_client.post(
        "/auth/signup", json={"username": "a1", "email": "fresh@example.com", "password": PASSWORD}
    )
    taken = anonymous_client.post(
        "/auth/signup", json={"username": "a2", "email": "TAKEN@example.com", "password": PASSWORD}
    )
    assert (fresh.status_code, fresh.data) == (taken.status_code, taken.data)
    assert deliver() == 2
    [notice] = received(smtp_sink[0], "TAKEN@example.com")
    assert notice["subject"] == "You already have an account"
    assert "token=" not in notice["text"]
    with app.app_context():
        names = db.session.execute(select(User.username)).scalars().all()
    assert sorted(names) == ["a1", "owner"]
