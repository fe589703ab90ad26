"""Gunicorn's access log as one JSON object per request (valid JSON whatever the client sent)."""

import datetime as dt
import json
import traceback
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]


class JsonAccessLogger(Logger):  # type: ignore[misc]  # gunicorn has no type hints
    """Writes access lines with the request id and the calling key's prefix."""

    def access(
        self,
        resp: Any,
        req: Any,  # noqa: ARG002 - gunicorn's signature
        environ: dict[str, Any],
        request_time: Any,
    ) -> None:
        """Log one request; a logging failure never fails the request."""
        if not self.access_log_enabled:
            return
        headers = {k.lower(): v for k, v in resp.headers}
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "request_id": headers.get("x-request-id", "-"),
            "api_key": environ.get("app.api_key", "-"),
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING", ""),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_us": request_time.seconds * 1_000_000 + request_time.microseconds,
            "user_agent": environ.get("HTTP_USER_AGENT", "-"),
        }
        try:
            self.access_log.info(json.dumps(entry))
        except Exception:
            self.error(traceback.format_exc())
