"""``python -m app.mailsink``: an SMTP server that keeps what it receives, and shows it.

For compose's local stack (SMTP_URL=smtp://mailsink:1025) and for trying the mail flows on
one machine: the messages are kept in memory (the newest MAX_KEPT) and listed over HTTP, as
JSON at ``/messages`` (``DELETE /messages`` empties it) and as a small page at ``/``. Built on
aiosmtpd, in the project's own image, since the container check builds without a public
registry to pull Mailpit from; ``/healthz`` answers the image's HEALTHCHECK. Never for
production: anyone who reaches it reads the mail.
"""

import argparse
import html
import json
import threading
from collections import deque
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

MAX_KEPT = 500


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    return None if body is None else cast(str, body.get_content())


class Sink:
    """An aiosmtpd handler that keeps each message, parsed, in memory (thread-safe)."""

    def __init__(self) -> None:
        self.messages: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        """Keep the message; 250 to the client."""
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        message = message_from_bytes(data, policy=policy.default)
        item = {
            "received_at": datetime.now(UTC).isoformat(),
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_tos),
            "subject": str(message["Subject"] or ""),
            "text": _part(message, "plain"),
            "html": _part(message, "html"),
        }
        with self.lock:
            self.messages.append(item)
        return "250 Message accepted"

    def list(self) -> list[dict[str, Any]]:
        """The kept messages, oldest first."""
        with self.lock:
            return list(self.messages)

    def clear(self) -> None:
        """Forget every message."""
        with self.lock:
            self.messages.clear()


def _page(messages: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(m['received_at'])}</td><td>{html.escape(', '.join(m['rcpt_to']))}"
        f"</td><td>{html.escape(m['subject'])}</td><td><pre>{html.escape(m['text'] or '')}</pre>"
        "</td></tr>"
        for m in reversed(messages)
    )
    return (
        "<!doctype html><meta charset=utf-8><title>Mail sink</title><h1>Mail sink</h1>"
        f"<p>{len(messages)} messages, newest first. JSON: <a href=/messages>/messages</a>.</p>"
        f"<table border=1 cellpadding=4><tr><th>received<th>to<th>subject<th>text{rows}</table>"
    )


def _viewer(sink: Sink) -> type[BaseHTTPRequestHandler]:
    class Viewer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/messages":
                self._answer(200, "application/json", json.dumps(sink.list()).encode())
            elif self.path == "/":
                self._answer(200, "text/html; charset=utf-8", _page(sink.list()).encode())
            elif self.path == "/healthz":  # the image's HEALTHCHECK asks it (on PORT)
                self._answer(200, "application/json", b'{"status": "ok"}')
            else:
                self._answer(404, "application/json", b'{"status": "not found"}')

        def do_DELETE(self) -> None:
            if self.path == "/messages":
                sink.clear()
                self._answer(204, "application/json", b"")
            else:
                self._answer(404, "application/json", b'{"status": "not found"}')

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Viewer


def main(argv: list[str] | None = None) -> None:
    """Listen for SMTP and serve the list until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m app.mailsink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args(argv)
    sink = Sink()
    controller = Controller(sink, hostname=args.host, port=args.smtp_port)
    controller.start()
    viewer = ThreadingHTTPServer((args.host, args.http_port), _viewer(sink))
    print(  # noqa: T201 - the one line a person starting it reads
        f"mail sink: SMTP on {args.host}:{args.smtp_port}, "
        f"messages on http://{args.host}:{args.http_port}/",
        flush=True,
    )
    try:
        viewer.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        viewer.server_close()
        controller.stop()


if __name__ == "__main__":
    main()
