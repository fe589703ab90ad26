"""What the bridge answers itself, for requests that never reach the app: whole responses,
and problem+json in the app's shape (app.web.problems), with the request id."""

import json
from http import HTTPStatus

from app.server.types import Send


async def send_problem(
    send: Send, status: int, detail: str, request_id: str, retry_after: int | None = None
) -> int:
    """Send a whole problem+json response and close the connection; return the body's size."""
    payload = json.dumps(
        {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
         "detail": detail}
    ).encode()  # fmt: skip
    headers = whole_headers(payload, "application/problem+json", request_id, close=True)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send_whole(send, status, payload, headers)
    return len(payload)


def whole_headers(
    payload: bytes, content_type: str, request_id: str, *, close: bool = False
) -> list[tuple[bytes, bytes]]:
    """The headers of a whole response: type, length, request id (and close)."""
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    # A body left unread makes the connection unusable for another request.
    return [*headers, (b"connection", b"close")] if close else headers


async def send_whole(
    send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Send a response with its whole body."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
