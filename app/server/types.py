"""The ASGI and WSGI shapes the serving runtime speaks."""

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# The app's admission of a body (app.web.admission): environ -> its byte limit, or None.
BodyLimit = Callable[[dict[str, Any]], int | None]
