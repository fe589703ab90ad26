"""The mail tests' fixtures: a real SMTP server in process (aiosmtpd, the sink's handler),
the app's settings pointed at it, and the worker's mail duty run on demand."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from flask import Flask

from app.config import SETTINGS, Settings
from app.mailsink import Sink
from app.worker import mail as mail_duty
from tests.helpers import free_port

PUBLIC_URL = "https://front.example"
# The credentials the sink takes, if a client authenticates (tests/mail/test_worker_process.py).
SMTP_USER, SMTP_PASSWORD = "someone", "s3cret"


def authenticate(
    _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    """An SMTP server on loopback that keeps what it receives (AUTH offered without TLS, on
    loopback only); its port."""
    sink = Sink()
    port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def mail_settings(app: Flask, smtp_sink: tuple[Sink, int]) -> Iterator[Callable[..., None]]:
    """The app's settings sending mail to the sink, links on PUBLIC_URL; a function to
    change more of them; the settings as they were afterwards."""
    before: Settings = app.extensions[SETTINGS]

    def change(**fields: Any) -> None:
        app.extensions[SETTINGS] = app.extensions[SETTINGS].model_copy(update=fields)

    change(SMTP_URL=f"smtp://127.0.0.1:{smtp_sink[1]}", PUBLIC_URL=PUBLIC_URL, SIGNUP="open")
    try:
        yield change
    finally:
        app.extensions[SETTINGS] = before


@pytest.fixture
def deliver(app: Flask, mail_settings: Callable[..., None]) -> Callable[[], int]:
    """Run the worker's mail duty once; how many messages it sent."""

    def run() -> int:
        with app.app_context():
            return mail_duty.deliver()

    return run
