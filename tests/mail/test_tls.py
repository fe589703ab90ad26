"""SMTP_URL's encrypted forms against aiosmtpd on loopback, with authentication: STARTTLS
(``smtp+starttls://``, the server refusing anything before it) and implicit TLS
(``smtps://``); the server's certificate is verified against SSL_CERT_FILE, and one the
client does not trust is an attempt failed, never a message sent in the clear."""

import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from app.db.session import db
from app.mailsink import Sink
from app.models import MailMessage
from tests.factories import make_user
from tests.helpers import free_port
from tests.mail.conftest import SMTP_PASSWORD, SMTP_USER, authenticate
from tests.mail.helpers import received

Deliver = Callable[[], int]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and its key, made by openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(params=["smtp+starttls", "smtps"])
def tls_sink(
    request: pytest.FixtureRequest,
    certificate: tuple[Path, Path],
    mail_settings: Callable[..., None],
) -> Iterator[Sink]:
    """A sink speaking STARTTLS (required before AUTH and mail) or implicit TLS, which the
    app's SMTP_URL names with credentials."""
    sink, port = Sink(), free_port()
    scheme = request.param
    kwargs: dict[str, Any] = {"authenticator": authenticate}
    if scheme == "smtps":
        # The whole connection is TLS; aiosmtpd's auth_require_tls knows only STARTTLS's.
        kwargs |= {"ssl_context": _server_context(certificate), "auth_require_tls": False}
    else:
        kwargs |= {"tls_context": _server_context(certificate), "require_starttls": True}
    controller = Controller(sink, hostname="localhost", port=port, **kwargs)
    controller.start()
    mail_settings(SMTP_URL=f"{scheme}://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{port}")
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def trust(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make the client trust the sink's certificate (OpenSSL reads SSL_CERT_FILE)."""
    return lambda: monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


def test_mail_goes_over_tls_with_authentication(
    app: Flask, client: FlaskClient, deliver: Deliver, tls_sink: Sink, trust: Callable[[], None]
) -> None:
    user = make_user(app, email="tls@example.com")
    assert client.post(f"/users/{user.id}/invitation").status_code == 202

    # Not trusted yet: the handshake fails, nothing is sent, the message waits for a retry.
    assert deliver() == 0
    assert received(tls_sink, "tls@example.com") == []

    trust()
    with app.app_context():
        db.session.execute(update(MailMessage).values(next_attempt_at=MailMessage.created_at))
        db.session.commit()
    assert deliver() == 1
    (message,) = received(tls_sink, "tls@example.com")
    assert "/invitation?token=" in message["text"]
