"""The running request's ``flask.request`` and ``flask.g`` objects, each by one bound call.

Every use of those proxies looks the object up again (three Python calls each), and a
``typing.cast`` around the lookup is one more call at each use; the pipeline's steps and the
database's units of work read them on every request, so they look each up once through these
(issue #39, docs/explanation/benchmarks.md). Outside a request both raise as the proxies do.
"""

from collections.abc import Callable
from typing import Any, cast

from flask import Request, g, request
from werkzeug.local import LocalProxy

current_request: Callable[[], Request] = cast("LocalProxy[Request]", request)._get_current_object
current_g: Callable[[], Any] = cast("LocalProxy[Any]", g)._get_current_object
