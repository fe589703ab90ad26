"""The app's own classes behave as Flask's do."""

from typing import Any, cast

import pytest
from flask import Flask, g
from flask.ctx import _AppCtxGlobals
from werkzeug.local import LocalProxy

from app.factory import Globals


def test_g_behaves_as_flasks_own(app: Flask) -> None:
    answers = []
    for cls in (Globals, _AppCtxGlobals):
        app.app_ctx_globals_class = cls
        try:
            with app.test_request_context():
                here = cast("LocalProxy[Any]", g)._get_current_object()
                assert type(here) is cls
                g.principal = "key"
                here.request_id = "r1"
                setattr(g, "get", "shadowed")  # noqa: B010 - a name of one of g's methods
                seen: list[Any] = [g.principal, "principal" in g, sorted(g), vars(here)]
                seen += [g.pop("principal"), g.pop("gone", None), g.setdefault("n", 1)]
                del g.request_id
                with pytest.raises(AttributeError):
                    _ = g.request_id
                answers.append([*seen, dict(vars(here))])
        finally:
            app.app_ctx_globals_class = Globals
    assert answers[0] == answers[1]
    assert vars(Globals)["__setattr__"] is object.__setattr__  # set without a Python call
