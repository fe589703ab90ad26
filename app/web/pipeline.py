"""The request pipeline: every hook that runs around a view, registered here in one order.

What runs before a view, first to last (Flask runs before_request hooks as registered):

1. recording.start_timing: first, so that refused requests are timed and counted too.
2. tracing (only when OTEL_* asks): the request's span opens before auth, so it holds the
   key lookup's SQL.
3. browsers.answer_preflight (only with CORS_ORIGINS): browsers send preflights without
   credentials, so they are answered before authentication.
4. auth.authenticate_request: the key and the view's scopes, before any body is read; a
   failure is kept, not raised, so that the rate limit below counts it.
5. rate_limits.count_request (only with RATE_LIMIT): by the key found, else the address,
   refused requests included, so guessing keys is as slow as using one.
6. auth.enforce_authentication: a request without a valid key stops here, before its body,
   query string or route rules are looked at.
7. bodies.reject_repeated_parameters: each of our parameters takes one value.
8. bodies.require_json_body: a write's body is a JSON object (or the view streams its own).

What runs after a view, first to last (registered below in the reverse order, because Flask
runs after_request hooks last-registered first):

1. rate_limits.add_headers: the budget left.
2. the compressor: before CORS and the request id, which add headers only.
3. CORS (flask-cors): the allow headers, for pages of CORS_ORIGINS.
4. recording.echo_request_id: X-Request-ID on every response.
5. recording.record_answer: the final status, so counted last of ours.
6. the Consistency-Token of a successful write (with a replica only): last, so that it
   reads the primary's WAL position after everything else is done.

Before all of these, problems.scim_errors rewrites a problem+json answer under /scim/v2 into
SCIM's error schema (before the compressor, which would otherwise compress the old body).

Errors from any of these or from the view become problem+json (app.web.problems).

The steps in a row of ours run in one hook each way (two without tracing or CORS, whose
hooks are their libraries' own and sit between ours): Flask asks, for every hook a request,
whether it is a coroutine function (``ensure_sync``), and each hook is a call of its own;
thirteen hook calls a request were 16% of a GET's profiled time (issue #39). A feature that
is off adds no step at all.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask, Response

from app.config import Settings
from app.db import engines
from app.telemetry import tracing
from app.web import auth, bodies, browsers, problems, rate_limits, recording
from app.web.problems import register_error_handlers

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

Before = Callable[[], Response | None]
After = Callable[[Response], Response]


def install(
    app: Flask, settings: Settings, tracer_provider: "TracerProvider | None" = None
) -> None:
    """Register the pipeline's hooks and error handlers on ``app``, in the order above."""
    register_error_handlers(app)
    limited = rate_limits.configure(app, settings)
    cors = bool(settings.cors_origins)
    compress = browsers.compressor(app)  # its after_request hook

    # Before the view, in the order they run.
    before: list[Before] = [
        *([browsers.answer_preflight] if cors else []),  # 3
        auth.authenticate_request,  # 4
        *([rate_limits.count_request] if limited else []),  # 5
        auth.enforce_authentication,  # 6
        bodies.reject_repeated_parameters,  # 7
        bodies.require_json_body,  # 8
    ]
    app.teardown_request(recording.record_unanswered)
    if tracer_provider is not None or tracing.requested():
        app.before_request(recording.start_timing)  # 1
        tracing.init_app(app, settings, tracer_provider)  # 2 (its own before and teardown hooks)
    else:
        before.insert(0, recording.start_timing)  # 1
    app.before_request(_run_before(before))

    # After the view, in the order they run; registered last-to-run first.
    ours_first: list[After] = [
        problems.scim_errors,  # 0: SCIM's error schema under /scim/v2
        *([rate_limits.add_headers] if limited else []),  # 1
        compress,  # 2
    ]
    ours_last: list[After] = [
        recording.echo_request_id,  # 4
        recording.record_answer,  # 5
    ]
    if (consistency_token := engines.consistency_token_hook(app)) is not None:
        ours_last.append(consistency_token)  # 6
    if cors:
        app.after_request(_run_after(ours_last))
        browsers.enable_cors(app, settings)  # 3 (flask-cors registers its own hook)
        app.after_request(_run_after(ours_first))
    else:
        app.after_request(_run_after(ours_first + ours_last))


def _run_before(steps: list[Before]) -> Before:
    """One before_request hook that runs ``steps`` in order; the first answer ends it."""
    order = tuple(steps)

    def before_view() -> Response | None:
        for step in order:
            answer = step()
            if answer is not None:
                return answer
        return None

    return before_view


def _run_after(steps: list[After]) -> After:
    """One after_request hook that runs ``steps`` in order on the response."""
    order = tuple(steps)

    def after_view(response: Response) -> Response:
        for step in order:
            response = step(response)
        return response

    return after_view
