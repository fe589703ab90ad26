"""The worker's mail duty against real SMTP servers on loopback, on every backend: a 5xx
fails a message at once with the reason, an unreachable server is retried with backoff
then failed after MAIL_MAX_ATTEMPTS, no SMTP_URL writes the message to the log; the
metrics count each outcome."""

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update

from app.db.session import db
from app.mailsink import Sink
from app.models import MailMessage
from app.models.outbox import FAILED, PENDING, SENT
from app.services.mail import Outgoing
from app.worker import mail as mail_duty
from tests.factories import make_user
from tests.helpers import free_port
from tests.mail.conftest import SMTP_PASSWORD, SMTP_USER
from tests.mail.helpers import received

Deliver = Callable[[], int]


class Refusing:
    """An SMTP server that refuses every recipient for good (550)."""

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's name
        self, _server: SMTP, _session: Session, _envelope: Envelope, _address: str, _options: Any
    ) -> str:
        return "550 5.1.1 No such mailbox here"


@pytest.fixture
def refusing_port() -> Iterator[int]:
    port = free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def _invite(app: Flask, client: FlaskClient, email: str) -> None:
    user = make_user(app, email=email)
    assert client.post(f"/users/{user.id}/invitation").status_code == 202


def _row(app: Flask) -> Any:
    with app.app_context():
        row = db.session.execute(
            select(MailMessage.state, MailMessage.attempts, MailMessage.last_error)
        ).one()
        db.session.rollback()
        return row


def _due_now(app: Flask) -> None:
    with app.app_context():
        db.session.execute(update(MailMessage).values(next_attempt_at=MailMessage.created_at))
        db.session.commit()


def test_a_5xx_fails_the_message_at_once_with_the_reason(
    app: Flask,
    client: FlaskClient,
    mail_settings: Callable[..., None],
    deliver: Deliver,
    refusing_port: int,
) -> None:
    mail_settings(SMTP_URL=f"smtp://127.0.0.1:{refusing_port}")
    failed = mail_duty.FAILED._value.get()
    _invite(app, client, "nope@example.com")
    assert deliver() == 0
    state, attempts, error = _row(app)
    assert (state, attempts) == (FAILED, 1)
    assert "550" in error
    assert mail_duty.FAILED._value.get() == failed + 1


def test_an_unreachable_server_is_retried_then_the_message_sent(
    app: Flask,
    client: FlaskClient,
    mail_settings: Callable[..., None],
    smtp_sink: tuple[Sink, int],
    deliver: Deliver,
) -> None:
    mail_settings(SMTP_URL=f"smtp://127.0.0.1:{free_port()}")  # nobody listens
    retried, sent = mail_duty.RETRIED._value.get(), mail_duty.SENT._value.get()
    _invite(app, client, "later@example.com")
    assert deliver() == 0
    state, attempts, error = _row(app)
    assert (state, attempts) == (PENDING, 1)
    assert "ConnectionRefusedError" in error
    assert deliver() == 0  # not due yet: the backoff holds it
    assert _row(app).attempts == 1
    mail_settings(SMTP_URL=f"smtp://127.0.0.1:{smtp_sink[1]}")
    _due_now(app)
    assert deliver() == 1
    assert tuple(_row(app)) == (SENT, 2, None)
    assert len(received(smtp_sink[0], "later@example.com")) == 1
    assert mail_duty.RETRIED._value.get() == retried + 1
    assert mail_duty.SENT._value.get() == sent + 1


def test_after_max_attempts_the_message_fails_with_the_last_reason(
    app: Flask, client: FlaskClient, mail_settings: Callable[..., None], deliver: Deliver
) -> None:
    mail_settings(SMTP_URL=f"smtp://127.0.0.1:{free_port()}", MAIL_MAX_ATTEMPTS=2)
    _invite(app, client, "never@example.com")
    deliver()
    _due_now(app)
    deliver()
    state, attempts, error = _row(app)
    assert (state, attempts) == (FAILED, 2)
    assert "ConnectionRefusedError" in error


def test_without_smtp_url_the_message_is_written_to_the_log(
    app: Flask,
    client: FlaskClient,
    mail_settings: Callable[..., None],
    deliver: Deliver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mail_settings(SMTP_URL="")
    _invite(app, client, "logged@example.com")
    with caplog.at_level(logging.INFO, logger="app.worker.mail"):
        assert deliver() == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "app.worker.mail"]
    assert "to logged@example.com" in line
    # The whole link, as it is to be copied: not quoted-printable, not cut across lines.
    assert re.search(r"^https://front\.example/invitation\?token=[\w-]{43}$", line, re.M), line
    assert _row(app).state == SENT


def test_wrong_credentials_are_retried_not_failed(
    app: Flask,
    client: FlaskClient,
    mail_settings: Callable[..., None],
    smtp_sink: tuple[Sink, int],
    deliver: Deliver,
) -> None:
    # A 535 is cured by fixing SMTP_URL: what waited is sent then, not lost.
    mail_settings(SMTP_URL=f"smtp://someone:wrong@127.0.0.1:{smtp_sink[1]}")
    _invite(app, client, "auth@example.com")
    assert deliver() == 0
    state, _, error = _row(app)
    assert state == PENDING
    assert "535" in error
    mail_settings(SMTP_URL=f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{smtp_sink[1]}")
    _due_now(app)
    assert deliver() == 1
    assert len(received(smtp_sink[0], "auth@example.com")) == 1


def test_an_unreachable_server_is_tried_once_a_round(
    app: Flask, client: FlaskClient, mail_settings: Callable[..., None], deliver: Deliver
) -> None:
    mail_settings(SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    for n in range(3):
        _invite(app, client, f"batch{n}@example.com")
    with app.app_context():
        first = mail_duty.Smtp(app.extensions["settings"].SMTP_URL, "a@example.com")
        message = mail_duty.compose(Outgoing("b@example.com", "s", "t", "h"), "a@x")
        with pytest.raises(ConnectionRefusedError):
            first.send(message)
        # The same reason again without another try: the batch's other messages wait no more.
        with pytest.raises(ConnectionRefusedError) as again:
            first.send(message)
        assert again.value is first.unreachable
    assert deliver() == 0
    with app.app_context():
        rows = db.session.execute(select(MailMessage.state, MailMessage.last_error)).all()
    assert [state for state, _ in rows] == [PENDING] * 3
    assert all("ConnectionRefusedError" in (error or "") for _, error in rows)


def test_a_message_that_cannot_be_rendered_fails_and_the_others_go(
    app: Flask,
    client: FlaskClient,
    smtp_sink: tuple[Sink, int],
    deliver: Deliver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with app.app_context():  # the template needs data.email, which this row lacks
        db.session.execute(
            insert(MailMessage).values(kind="email_changed", recipient="bad@example.com", data={})
        )
        db.session.commit()
    _invite(app, client, "good@example.com")
    with caplog.at_level(logging.ERROR, logger="app.worker.mail"):
        assert deliver() == 1
    assert received(smtp_sink[0], "good@example.com")
    with app.app_context():
        bad = db.session.execute(
            select(MailMessage.state, MailMessage.last_error).where(
                MailMessage.recipient == "bad@example.com"
            )
        ).one()
    assert tuple(bad) == (FAILED, "not prepared: UndefinedError")


def test_an_admin_lists_the_queue_and_its_states(
    app: Flask,
    client: FlaskClient,
    mail_settings: Callable[..., None],
    deliver: Deliver,
    refusing_port: int,
) -> None:
    _invite(app, client, "first@example.com")
    deliver()
    mail_settings(SMTP_URL=f"smtp://127.0.0.1:{refusing_port}")
    _invite(app, client, "second@example.com")
    deliver()
    _invite(app, client, "third@example.com")
    page = client.get("/mail-messages").get_json()
    assert [(m["recipient"], m["state"], m["attempts"]) for m in page["items"]] == [
        ("third@example.com", PENDING, 0),
        ("second@example.com", FAILED, 1),
        ("first@example.com", SENT, 1),
    ]
    assert "550" in page["items"][1]["last_error"]
    assert list(page["items"][0]) == [
        "id", "kind", "recipient", "user_id", "state", "attempts", "last_error",
        "created_at", "next_attempt_at", "finished_at",
    ]  # fmt: skip
    failed = client.get("/mail-messages?state=failed&limit=1").get_json()
    assert [m["recipient"] for m in failed["items"]] == ["second@example.com"]
    assert failed["next_cursor"] is None
    first = client.get("/mail-messages?limit=2").get_json()
    rest = client.get(f"/mail-messages?limit=2&cursor={first['next_cursor']}").get_json()
    assert [m["recipient"] for m in rest["items"]] == ["first@example.com"]
