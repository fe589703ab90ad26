"""Any WSGI app of bench/ under the shipped server: ``python -m bench.apps.served MODULE:APP``.

The same granian settings and bridge as ``python -m app.server``, so a comparison under
"the shipped server" differs in the app only.
"""

import os
import sys

from werkzeug.utils import import_string

from app.config import Settings
from app.server.bridge import WSGIBridge
from app.server.serve import bridged, main

_TARGET = "BENCH_WSGI"


def asgi_app() -> WSGIBridge:
    """Build the named WSGI app in this worker, behind the bridge."""
    return bridged(import_string(os.environ[_TARGET]), Settings())


if __name__ == "__main__":
    os.environ[_TARGET] = sys.argv[1]
    main("bench.apps.served:asgi_app")
