"""Password-reset requests side by side: an active account's address, an unknown address,
a deactivated account's; and the worker's cost per message, into a real SMTP server.

Issue 36, point 4: the three get the same 202 body and must take the same time within noise.
They do the same work by construction (one INSERT of the request into the outbox; the worker
resolves the address later), and this measures it: each case is requested ``--rounds``
times, interleaved (a shared machine's slow second hits all three alike), through the app in
process, on the embedded SQLite database of a temporary folder or on ``--database-url`` (an
empty database of its own, which it migrates and leaves filled); the
figures are wall-clock medians and their ratio to the known address's. Then the worker's
mail duty sends the known address's messages to an in-process aiosmtpd server and the
milliseconds a message it took are printed (the token issued, the templates rendered, the
SMTP exchange, the outcome settled).
Usage: .venv/bin/python -m bench.mail [--rounds 300] [--database-url postgresql://...]
"""

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import delete, update

from app import create_app
from app.config import Settings
from app.db import migrations
from app.db.session import db
from app.mailsink import Sink
from app.models import MailMessage, User
from app.schemas.users import UserCreate
from app.services import users
from app.worker import mail as mail_duty

CASES = {
    "known": "ann@example.com",
    "unknown": "nobody@example.com",
    "deactivated": "cy@example.com",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    """Print the three cases' medians side by side, then the worker's time a message."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    sink, port = Sink(), _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    with tempfile.TemporaryDirectory() as folder:
        # No limits: the bench asks for one address hundreds of times a minute.
        settings = Settings(
            DATABASE_URL=args.database_url,
            INSTANCE_PATH=Path(folder),
            RATE_LIMIT="",
            MAIL_LIMIT="",
            MAIL_ADDRESS_LIMIT="",
            SMTP_URL=f"smtp://127.0.0.1:{port}",
            LOG_LEVEL="WARNING",
        )
        app = create_app(settings)
        with app.app_context():
            migrations.migrate(db.engine)
            for name in ("ann", "cy"):
                users.create_user(UserCreate(username=name, email=f"{name}@example.com"))
            db.session.execute(update(User).where(User.username == "cy").values(active=False))
            db.session.commit()
        client = app.test_client()
        times: dict[str, list[float]] = {case: [] for case in CASES}
        bodies: dict[str, bytes] = {}
        for _ in range(args.rounds):
            for case, email in CASES.items():
                started = time.perf_counter()
                response = client.post("/auth/password-reset", json={"email": email})
                times[case].append(time.perf_counter() - started)
                assert response.status_code == 202, response.get_data(as_text=True)
                bodies[case] = response.get_data()
        with app.app_context():
            # The worker's share: the known address's messages only (the others are dropped).
            db.session.execute(delete(MailMessage).where(MailMessage.recipient != CASES["known"]))
            db.session.commit()
            started, sent = time.perf_counter(), 0
            while True:
                batch = mail_duty.deliver()
                if batch == 0:
                    break
                sent += batch
            per_message = (time.perf_counter() - started) / max(1, sent)
            for engine in db.engines.values():
                engine.dispose()
    controller.stop()
    same = len(set(bodies.values())) == 1
    reference = statistics.median(times["known"])
    backend = settings.backend
    print(f"POST /auth/password-reset on {backend}, {args.rounds} rounds each,")
    print("median wall-clock ms (ratio to the known address's)")
    print("  ".join(f"{case:>16}" for case in CASES))
    print(
        "  ".join(
            f"{statistics.median(t) * 1000:9.2f} ({statistics.median(t) / reference:.2f})"
            for t in times.values()
        )
    )
    print(f"the same 202 body for all three: {'yes' if same else 'NO'}")
    print(
        f"worker: {sent} messages sent to aiosmtpd, {per_message * 1000:.2f} ms a message "
        f"({len(sink.list())} received)"
    )


if __name__ == "__main__":
    main()
