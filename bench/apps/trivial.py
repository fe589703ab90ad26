"""A trivial sync view and its async twin, on our loop runner and on Flask's default."""

import os

from flask import Flask

from app import App


def _build(app: Flask) -> Flask:
    @app.get("/sync")
    def sync_view() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/async")
    async def async_view() -> dict[str, bool]:
        return {"ok": True}

    return app


# TRIVIAL_RUNNER=ours: coroutines on the thread's long-lived loop; asgiref: Flask's default.
if os.environ.get("TRIVIAL_RUNNER", "ours") == "ours":
    app = _build(App(__name__))
else:
    app = _build(Flask(__name__))
