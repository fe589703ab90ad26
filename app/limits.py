"""Rate limits per API key, and per client address for requests without a valid one, with
Flask-Limiter: counted in this process's memory by default, in Redis when
RATE_LIMIT_STORAGE_URL names one (one budget across processes and replicas)."""

import time

from flask import Flask, Response, g, request
from flask_limiter import HeaderNames, Limiter

from app.config import Settings

# Probes of the orchestrator and the load balancer are never limited.
_UNLIMITED_ENDPOINTS = frozenset({"ops.get_health", "ops.get_readiness"})
# Flask-Limiter writes its Retry-After on every response, over any there was (a 503's one
# second became the window's 60): it writes this name instead, which _finish_headers turns
# into Retry-After on a 429 only.
_ITS_RETRY_AFTER = "X-Limiter-Retry-After"
_HEADERS = {
    HeaderNames.LIMIT: "RateLimit-Limit",
    HeaderNames.REMAINING: "RateLimit-Remaining",
    HeaderNames.RESET: "RateLimit-Reset",
    HeaderNames.RETRY_AFTER: _ITS_RETRY_AFTER,
}
_TOO_MANY_REQUESTS = 429
# A Redis that stops answering costs a request this many seconds at most, then the count
# falls back to this process's memory until it answers again.
_STORAGE_TIMEOUT_SECONDS = 1


def _client() -> str:
    key = g.get("api_key")
    return f"key:{key.prefix}" if key is not None else f"address:{request.remote_addr}"


def _unlimited() -> bool:
    return request.endpoint in _UNLIMITED_ENDPOINTS or request.method == "OPTIONS"


def _finish_headers(response: Response) -> Response:
    # Flask-Limiter writes the reset as a Unix time; the RateLimit header fields (IETF
    # httpapi draft) give seconds from now, as Retry-After does.
    reset = response.headers.get("RateLimit-Reset")
    if reset is not None and reset.isdigit():
        response.headers["RateLimit-Reset"] = str(max(0, int(reset) - int(time.time())))
    retry_after = response.headers.pop(_ITS_RETRY_AFTER, None)
    if retry_after is not None and response.status_code == _TOO_MANY_REQUESTS:
        response.headers["Retry-After"] = retry_after
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Limit every request but the probes to RATE_LIMIT (empty: no limit)."""
    if not settings.RATE_LIMIT:
        return
    # Registered first, so it runs after Flask-Limiter has added its headers.
    app.after_request(_finish_headers)
    redis = settings.RATE_LIMIT_STORAGE_URL.startswith(("redis://", "rediss://"))
    limiter = Limiter(
        _client,
        app=app,
        default_limits=[settings.RATE_LIMIT],
        storage_uri=settings.RATE_LIMIT_STORAGE_URL,
        storage_options=(
            {
                "socket_timeout": _STORAGE_TIMEOUT_SECONDS,
                "socket_connect_timeout": _STORAGE_TIMEOUT_SECONDS,
            }
            if redis
            else {}
        ),
        headers_enabled=True,
        header_name_mapping=_HEADERS,
        in_memory_fallback_enabled=True,
    )
    limiter.request_filter(_unlimited)
