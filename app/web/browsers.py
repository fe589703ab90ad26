"""What browsers and clients on slow links need around the views: CORS for pages on other
origins, compression of larger bodies. Both are maintained Flask extensions (flask-cors,
flask-compress), configured here and nowhere else; app.web.pipeline places their hooks."""

from collections.abc import Callable

from flask import Flask, Response, request
from flask_compress import Compress
from flask_cors import CORS

from app.config import Settings

# What a page may send (the conditional and retry headers included) and read back.
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-Request-ID",
    "Consistency-Token",
]
EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Idempotency-Replayed",
    "Consistency-Token",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Seconds a browser may reuse a preflight's answer: fewer OPTIONS round trips.
PREFLIGHT_MAX_AGE = 600
# Bodies smaller than this go out as they are: under ~1 KB compression saves a packet at
# most, and costs a compressor's setup on every response.
COMPRESS_MIN_SIZE = 1024
COMPRESSED_TYPES = [
    "application/json",
    "application/problem+json",
    "application/x-ndjson",
    "text/csv",
    "text/html",
    "text/css",
    "application/javascript",
    "text/javascript",
]


def answer_preflight() -> Response | None:
    """Answer a CORS preflight with a 204 before authentication runs.

    Browsers send preflights without credentials (the Fetch standard), so one must not need
    a key; flask-cors then adds the allow headers, or none for an origin not allowed.
    """
    is_preflight = (
        request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    )
    if is_preflight and request.routing_exception is None:
        return Response(status=204)
    return None


def enable_cors(app: Flask, settings: Settings) -> None:
    """Let pages of CORS_ORIGINS call the API (flask-cors adds its own after_request hook)."""
    CORS(
        app,
        origins=settings.cors_origins,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        methods=METHODS,
        max_age=PREFLIGHT_MAX_AGE,
        # Keys travel in Authorization, never cookies: no credentialed mode needed.
        supports_credentials=False,
    )


# The codings of a streamed body (the export), in flask-compress's order of preference.
# Its default leaves gzip out: a client that accepts gzip alone (Go's net/http does, by
# default) got a 12.8 MB export uncompressed. gzip comes last, so a client that likes
# another coding as well as gzip keeps the one it got before.
STREAMED_CODINGS = ["zstd", "br", "deflate", "gzip"]


def compressor(app: Flask) -> Callable[[Response], Response]:
    """Configure compression of larger bodies; return its after_request hook, the caller's
    to place."""
    app.config.update(
        COMPRESS_MIMETYPES=COMPRESSED_TYPES,
        COMPRESS_MIN_SIZE=COMPRESS_MIN_SIZE,
        COMPRESS_ALGORITHM_STREAMING=STREAMED_CODINGS,
        # The views evaluate If-Match and If-None-Match themselves (app/api/conditional.py),
        # knowing a compressed body's tag ("v3:gzip") is its version's. werkzeug's evaluation
        # after compression compared an If-Match naming "v3" with "v3:gzip" and refused a GET
        # the view had allowed (a 412), and parsed both headers past the views' bounds.
        COMPRESS_EVALUATE_CONDITIONAL_REQUEST=False,
        # app.web.pipeline registers the hook below where the order says.
        COMPRESS_REGISTER=False,
    )
    compress = Compress(app)

    def compress_larger(response: Response) -> Response:
        # A body under COMPRESS_MIN_SIZE goes out as it is whatever else flask-compress
        # checks: only its Vary is needed. Its hook for a GET by id was ~40 Python calls
        # (the Accept-Encoding parsed, a KeyError raised and caught for the missing Vary).
        length = response.content_length
        if length is not None and length < COMPRESS_MIN_SIZE:
            _vary_on_accept_encoding(response)
            return response
        return compress.after_request(response)

    return compress_larger


def _vary_on_accept_encoding(response: Response) -> None:
    # flask-compress's own rule (its first Vary, extended unless it names Accept-Encoding),
    # found with getlist: Headers.get raises and catches an exception for a missing header.
    varies = response.headers.getlist("Vary")
    if not varies:
        response.headers.add("Vary", "Accept-Encoding")
    elif not varies[0]:
        response.headers["Vary"] = "Accept-Encoding"
    elif "accept-encoding" not in varies[0].lower():
        response.headers["Vary"] = f"{varies[0]}, Accept-Encoding"
