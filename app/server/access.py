"""The access log: one JSON object an exchange, with the request id and the key's prefix,
and no secret a client put in its path or query string."""

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from app.server.types import Scope

access_log = logging.getLogger("app.access")

# Values of parameters named like a credential, and anything shaped like one of our tokens
# (a short prefix, an underscore, a long random run: umk_..., and those of sessions to
# come), wherever it stands: a key sent in the query string was refused but logged whole.
_SECRET_NAMES = re.compile(
    r"(?i)((?:^|[&;])[^=&;]*(?:key|token|secret|passw|auth|session|code)[^=&;]*=)[^&;]*"
)
_TOKEN_SHAPED = re.compile(r"\b([a-z]{2,5}_)[A-Za-z0-9_-]{16,}")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """The text with credential-named parameters' values and token-shaped runs replaced."""
    text = _SECRET_NAMES.sub(rf"\1{REDACTED}", text)
    return _TOKEN_SHAPED.sub(rf"\1{REDACTED}", text)


@dataclass(frozen=True)
class Outcome:
    """What the access log says of one exchange."""

    status: int
    sent: int
    request_id: str
    key: str = "-"


class Entry(dict[str, Any]):
    """One exchange's fields, logged as the record's message: the access formatters
    (app.telemetry.logs) take the fields as they are; any other handler gets its JSON.

    Formatted to JSON here and parsed back there, each line cost a dumps and a loads
    on the event loop's thread, which serves every request of the process.
    """

    def __str__(self) -> str:
        return json.dumps(self)


def log_exchange(scope: Scope, started: float, outcome: Outcome) -> None:
    """Write the exchange's access log line."""
    client = scope.get("client") or ("-", 0)
    entry = Entry(
        {
            "request_id": outcome.request_id,
            "api_key": outcome.key,
            "remote": client[0],
            "method": scope["method"],
            "path": redact(scope["path"]),
            "query": redact(scope["query_string"].decode("latin-1")),
            "status": outcome.status,
            "bytes": outcome.sent,
            "duration_us": int((time.monotonic() - started) * 1_000_000),
        }
    )
    access_log.info(entry)
