"""From an ASGI request to the WSGI environ the app reads (PEP 3333)."""

import sys
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from app.server.types import Scope


def asgi_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name, a repeated one's values joined."""
    # A header sent twice is one field whose values are joined (RFC 9110 5.3), as every
    # WSGI server does, not the last one alone: the app can then see and refuse two
    # Authorization headers that a proxy checking the first would read differently.
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in headers:
            value = f"{headers[name]}{'; ' if name == 'cookie' else ', '}{value}"
        headers[name] = value
    return headers


def wsgi_environ(
    scope: Scope,
    headers: dict[str, str],
    whole_body: tuple[IO[bytes], int],
    request_id: str,
    port: str,
) -> dict[str, Any]:
    """The WSGI environ of an ASGI request whose body (and its length) is whole."""
    body, length = whole_body
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("127.0.0.1", port)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": _wsgi_path(scope),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # The body is whole and its length exact: the app may read it to its end.
        "wsgi.input_terminated": True,
    }
    if length or "content-length" in headers:
        environ["CONTENT_LENGTH"] = str(length)
    for name, value in headers.items():
        if name in {"content-length", "transfer-encoding"}:
            continue
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ[key] = value
        else:
            environ[f"HTTP_{key}"] = value
    environ["HTTP_X_REQUEST_ID"] = request_id
    return environ


def _wsgi_path(scope: Scope) -> str:
    # WSGI wants the path's bytes as latin-1 text (PEP 3333); ASGI's "path" is decoded
    # UTF-8, which werkzeug cannot take back for bytes outside latin-1: "raw_path" is exact.
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        raw = scope["path"].encode("utf-8")
    return unquote_to_bytes(raw).decode("latin-1")
