"""A token is spent by one conditional UPDATE: of concurrent uses of one link exactly one
succeeds, through the shipped server, on the server databases."""

import threading
from collections.abc import Callable

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.mailsink import Sink
from tests.helpers import LiveServer
from tests.mail.helpers import link_in, received, signed_in_user, token_of


@pytest.mark.live
@pytest.mark.backends("postgresql", "mysql", reason="concurrent writers on a server database")
def test_ten_concurrent_confirmations_give_exactly_one_204(
    app: Flask,
    anonymous_client: FlaskClient,
    smtp_sink: tuple[Sink, int],
    deliver: Callable[[], int],
    live_server: LiveServer,
) -> None:
    headers = signed_in_user(app, anonymous_client, "racer")
    changed = anonymous_client.patch("/me", json={"email": "racer@new.example"}, headers=headers)
    assert changed.status_code == 200
    assert deliver() == 1
    token = token_of(link_in(received(smtp_sink[0], "racer@new.example")[0]), "/email-verification")
    start = threading.Barrier(10)
    statuses: list[int] = []
    lock = threading.Lock()

    def confirm() -> None:
        start.wait(10)
        response = httpx.post(
            f"{live_server.url}/auth/email-verification/confirm", json={"token": token}, timeout=30
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=confirm) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [204] + [400] * 9, live_server.log()
    assert deliver() == 1  # the old address told once
    assert len(received(smtp_sink[0], "racer@example.com")) == 1
