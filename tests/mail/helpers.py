"""Reading what the sink received: the messages to an address, and their links' tokens."""

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from app.mailsink import Sink
from tests.factories import make_user, set_password
from tests.mail.conftest import PUBLIC_URL

PASSWORD = "correct horse battery staple"

_LINK = re.compile(r"https?://\S+\?token=[A-Za-z0-9_\-]+")


def received(sink: Sink, address: str) -> list[dict[str, Any]]:
    """The messages the sink received for ``address``, oldest first."""
    return [m for m in sink.list() if address in m["rcpt_to"]]


def link_in(message: dict[str, Any]) -> str:
    """The one link with a token in the message's text (the HTML carries the same)."""
    links = _LINK.findall(message["text"])
    assert len(links) == 1, message["text"]
    assert links[0] in message["html"]
    return str(links[0])


def token_of(link: str, page: str) -> str:
    """The token of a link, checked to open ``page`` of PUBLIC_URL."""
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{PUBLIC_URL}{page}"
    return parse_qs(parts.query)["token"][0]


def signed_in_user(app: Flask, client: FlaskClient, username: str) -> dict[str, str]:
    """A new user <username>@example.com with PASSWORD, signed in: their request headers."""
    user = make_user(app, username=username, email=f"{username}@example.com")
    set_password(app, user.id, PASSWORD)
    tokens = client.post(
        "/auth/sessions", json={"username": username, "password": PASSWORD}
    ).get_json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def reset_confirmation(client: FlaskClient, token: str, new_password: str) -> int:
    """The status of confirming a reset with ``token``."""
    return client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
    ).status_code
