"""The worker's mail duty: claim due messages, render them, send them by SMTP, settle them.

SMTP with the standard library's smtplib, on the worker's round thread: the rounds are one
thread already, a round sends a bounded batch over one connection, and smtplib speaks plain
SMTP, STARTTLS and implicit TLS with authentication; aiosmtplib would add an event loop to a
process that has none for no gain (the sends of a batch are sequential either way, on one
connection, as most servers throttle parallel ones from one client).

Without SMTP_URL each message is written to the worker's log instead (said at start-up), so
the flows work on a bare machine. A 5xx answer (address refused, message rejected) fails the
message at once; anything else (connection refused, a 4xx, a timeout) is retried with the
outbox's backoff, MAIL_MAX_ATTEMPTS attempts in all, then failed with the reason.
"""

import logging
import smtplib
import ssl
from contextlib import suppress
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import cast
from urllib.parse import unquote, urlsplit

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, delete, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.config import Settings, current_settings
from app.db.session import db
from app.models import MailMessage
from app.models.outbox import PENDING
from app.services import mail, outbox
from app.worker.metrics import REGISTRY
from app.worker.outage import Rounds

log = logging.getLogger("app.worker.mail")

BATCH = 50  # messages a round at most
LEASE = timedelta(minutes=10)  # a batch's sends at SMTP_TIMEOUT each fit well within it
SMTP_TIMEOUT = 20.0  # seconds for a connection or a command
BACKOFF_BASE = 30.0  # seconds before the 2nd attempt, doubling, ...
BACKOFF_CAP = 3600.0  # ... never more than an hour

_table = cast(Table, MailMessage.__table__)
# SMTP replies: 5xx is a permanent refusal (RFC 5321 4.2.1), but for 535 (the credentials),
# which a fixed SMTP_URL cures: retried like a 4xx.
_PERMANENT = range(500, 600)
_BAD_CREDENTIALS = 535

SENT = Counter("worker_mail_sent_total", "Mail messages sent.", registry=REGISTRY)
FAILED = Counter(
    "worker_mail_failed_total", "Mail messages failed for good (given up).", registry=REGISTRY
)
RETRIED = Counter(
    "worker_mail_retried_total",
    "Mail attempts that failed and will be tried again.",
    registry=REGISTRY,
)
DROPPED = Counter(
    "worker_mail_dropped_total",
    "Messages not sent: their account is unknown (a reset for an unknown address) or gone.",
    registry=REGISTRY,
)
QUEUED = Gauge("worker_mail_queued", "Mail messages waiting to be sent.", registry=REGISTRY)


class PermanentError(Exception):
    """The server refused the message for good (a 5xx): no retry."""


class Smtp:
    """One SMTP connection for a batch, opened at its first message."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(self.scheme, 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        self.sender = sender
        self.client: smtplib.SMTP | None = None
        # Why the server could not be reached this round: the rest of the batch is retried
        # with that reason at once, rather than each waiting SMTP_TIMEOUT for it again.
        self.unreachable: Exception | None = None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.scheme == "smtps":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT)
        try:
            if self.scheme == "smtp+starttls":
                client.starttls(context=context)
            if self.user is not None:
                client.login(self.user, self.password)
        except BaseException:
            client.close()  # refused credentials or TLS: the socket goes with the attempt
            raise
        return client

    def send(self, message: EmailMessage) -> None:
        """Send, or raise PermanentError (5xx) or another error (worth a retry)."""
        if self.unreachable is not None:
            raise self.unreachable
        if self.client is None:
            try:
                self.client = self._connect()
            except (smtplib.SMTPException, OSError) as error:
                self.unreachable = error
                raise
        try:
            self.client.send_message(message)
        except smtplib.SMTPRecipientsRefused as refused:
            codes = [code for code, _ in refused.recipients.values()]
            if all(code in _PERMANENT for code in codes):
                raise PermanentError(f"recipient refused: {codes}") from None
            raise
        except smtplib.SMTPResponseException as error:
            if error.smtp_code in _PERMANENT and error.smtp_code != _BAD_CREDENTIALS:
                raise PermanentError(f"{error.smtp_code} {_text(error.smtp_error)}") from None
            self.close()
            raise
        except (smtplib.SMTPException, OSError):
            self.close()  # a broken connection: the next message opens another
            raise

    def close(self) -> None:
        """Say QUIT if the connection still answers; forget it either way."""
        if self.client is not None:
            with suppress(smtplib.SMTPException, OSError):
                self.client.quit()
            self.client = None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def compose(outgoing: mail.Outgoing, sender: str) -> EmailMessage:
    """The message on the wire: text, with an HTML alternative."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = outgoing.recipient
    message["Subject"] = outgoing.subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message.set_content(outgoing.text)
    message.add_alternative(outgoing.html, subtype="html")
    return message


class Mailing(Rounds):
    """The mail duty: a batch a round, and what the probes report of it."""

    def __init__(self, settings: Settings) -> None:
        failed = "mail round failed: %s; retrying every round"
        super().__init__(settings, log, failed, "mail rounds succeed again")

    def start(self) -> None:
        """Say where mail goes."""
        announce(self.settings)

    def round(self) -> None:
        """Send what is due; a database failure is logged once per outage."""
        try:
            deliver()
        except SQLAlchemyError as error:
            self.outage.failed(error)
            return
        self.outage.succeeded()


def announce(settings: Settings) -> None:
    """Say at start-up where mail goes (never the URL's password)."""
    if not settings.SMTP_URL:
        log.warning("mail: no SMTP_URL: messages are written to this log, not sent")
        return
    parts = urlsplit(settings.SMTP_URL)
    log.info("mail: sent by %s to %s:%s", parts.scheme, parts.hostname, parts.port or "default")


def deliver() -> int:
    """One round: send what is due (a batch at most); how many were sent.

    No connection is held while a message is sent: each checked-out connection has a
    deadline of a few seconds (app/db/deadlines.py), and a send may take SMTP_TIMEOUT. So
    the claim, each preparation and each outcome check a connection out for their moment.
    """
    settings = current_settings()
    sent = 0
    with db.engine.connect() as conn:
        ids = outbox.claim(conn, _table, limit=BATCH, lease=LEASE)
    smtp = Smtp(settings.SMTP_URL, settings.MAIL_FROM) if settings.SMTP_URL else None
    try:
        for message_id in ids:
            sent += _attempt(message_id, settings, smtp)
    finally:
        if smtp is not None:
            smtp.close()
    with db.engine.connect() as conn:
        QUEUED.set(conn.execute(select(func.count()).where(_table.c.state == PENDING)).scalar_one())
        conn.rollback()
    return sent


def _settle(message_id: int, error: str | None = None, retry_in: timedelta | None = None) -> None:
    with db.engine.connect() as conn:
        outbox.settle(conn, _table, message_id, error=error, retry_in=retry_in)


def _prepared(message_id: int, settings: Settings) -> tuple[mail.Outgoing | None, int]:
    """The rendered message (None: dropped) and its attempts so far."""
    with db.engine.begin() as conn:
        # The token is issued and committed before the mail leaves: its link works on arrival.
        outgoing = mail.prepare(conn, message_id, settings)
        attempts: int = conn.execute(
            select(_table.c.attempts).where(_table.c.id == message_id)
        ).scalar_one()
        if outgoing is None:
            conn.execute(delete(_table).where(_table.c.id == message_id))
    return outgoing, attempts


def _attempt(message_id: int, settings: Settings, smtp: Smtp | None) -> int:
    try:
        outgoing, attempts = _prepared(message_id, settings)
    except IntegrityError:
        # Another worker issued this user's token of this purpose at the same moment.
        _settle(message_id, error="token issued concurrently", retry_in=timedelta(seconds=1))
        RETRIED.inc()
        return 0
    except SQLAlchemyError:
        raise  # the database: the round fails, and says so once
    except Exception as error:
        # One message that cannot be rendered must not stop the rest, round after round.
        log.exception("mail %s could not be prepared", message_id)
        _settle(message_id, error=f"not prepared: {type(error).__name__}")
        FAILED.inc()
        return 0
    if outgoing is None:
        DROPPED.inc()
        return 0
    message = compose(outgoing, settings.MAIL_FROM)
    try:
        if smtp is None:
            # Decoded, not as sent: on the wire the text is quoted-printable, which cuts a
            # link's token across lines and writes its "=" as "=3D" (not to be copied).
            log.info(
                "mail (not sent: no SMTP_URL) to %s, %r:\n%s",
                outgoing.recipient,
                outgoing.subject,
                outgoing.text,
            )
        else:
            smtp.send(message)
    except PermanentError as refused:
        _settle(message_id, error=str(refused))
        FAILED.inc()
        log.warning("mail %s failed for good: %s", message_id, refused)
        return 0
    except (smtplib.SMTPException, OSError) as error:
        reason = f"{type(error).__name__}: {error}"
        if attempts >= settings.MAIL_MAX_ATTEMPTS:
            _settle(message_id, error=reason)
            FAILED.inc()
            log.warning("mail %s failed after %s attempts: %s", message_id, attempts, reason)
        else:
            wait = outbox.backoff(attempts, base=BACKOFF_BASE, cap=BACKOFF_CAP)
            _settle(message_id, error=reason, retry_in=wait)
            RETRIED.inc()
            log.warning(
                "mail %s: attempt %s failed (%s); next in %.0f s",
                message_id,
                attempts,
                reason,
                wait.total_seconds(),
            )
        return 0
    _settle(message_id)
    SENT.inc()
    return 1
