"""``python -m app.mailsink``: what an SMTP client sends is listed over HTTP, as JSON and as
a page, and can be emptied; it answers the image's /healthz."""

import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest

from tests.helpers import ROOT, free_port

pytestmark = [pytest.mark.live, pytest.mark.backends("sqlite", reason="no database at all")]


@pytest.fixture
def sink() -> Iterator[tuple[int, str]]:
    smtp_port, http_port = free_port(), free_port()
    ports = ["--smtp-port", str(smtp_port), "--http-port", str(http_port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "app.mailsink", *ports],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the sink did not start"
                assert process.poll() is None
                time.sleep(0.1)
        yield smtp_port, url
    finally:
        process.terminate()  # only the process this fixture started
        process.wait(timeout=10)


def test_the_sink_lists_what_it_receives(sink: tuple[int, str]) -> None:
    smtp_port, url = sink
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Hi <b>"
    message.set_content("plain words")
    message.add_alternative("<p>html words</p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
        client.send_message(message)
    [item] = httpx.get(f"{url}/messages", timeout=5).json()
    assert item["rcpt_to"] == ["b@example.com"]
    assert item["subject"] == "Hi <b>"
    assert item["text"].strip() == "plain words"
    assert item["html"].strip() == "<p>html words</p>"
    page = httpx.get(url, timeout=5)
    assert "Hi &lt;b&gt;" in page.text  # escaped
    assert httpx.delete(f"{url}/messages", timeout=5).status_code == 204
    assert httpx.get(f"{url}/messages", timeout=5).json() == []
    assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
