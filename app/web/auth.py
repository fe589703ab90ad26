"""Bearer credentials on every endpoint that is not explicitly public: an API key
(``umk_...``) or a signed-in user's access token (``uma_...``), told apart by the prefix."""

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Request, current_app, g
from flask_openapi3.openapi import OpenAPI
from flask_openapi3.utils import parse_rule

from app.context import current_g, current_request
from app.errors import AppError, BadRequestError, ForbiddenError, UnauthorizedError
from app.services import api_keys, sessions
from app.services.api_keys import KeyInfo, Scope
from app.services.sessions import SessionInfo
from app.telemetry import metrics
from app.web import rate_limits

F = TypeVar("F", bound=Callable[..., Any])

BEARER_SCHEME = "bearerAuth"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "umk_... (an API key) or uma_... (an access token)",
        "description": "An API key (umk_...) or a user's access token (uma_..., from "
        "POST /auth/sessions). In Swagger UI: try POST /auth/sessions out, then Authorize "
        "with its access_token as it came (no 'Bearer ' before it).",
    }
}
Principal = KeyInfo | SessionInfo


def requires(*scopes: Scope) -> Callable[[F], F]:
    """Mark a view as needing a key with every one of these scopes (none: any valid key)."""

    def mark(view: F) -> F:
        view.required_scopes = scopes  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """Mark a view as open to anyone (operations endpoints; signing in and refreshing)."""
    view.public = True  # type: ignore[attr-defined]
    return view


def current_principal() -> Principal:
    """Return the API key or the user's session that authenticated this request."""
    principal: Principal = g.principal
    return principal


def current_key() -> KeyInfo:
    """Return the API key that authenticated this request (a user's session is refused)."""
    principal = current_principal()
    if not isinstance(principal, KeyInfo):
        raise ForbiddenError([], "This operation takes an API key, not a user's access token.")
    return principal


def current_session() -> SessionInfo:
    """Return the user's session that authenticated this request (an API key is refused)."""
    principal = current_principal()
    if not isinstance(principal, SessionInfo):
        raise ForbiddenError([], "This operation is a signed-in user's: send an access token.")
    return principal


def current_caller() -> str:
    """Name who is calling for per-caller bounds: an API key, or a signed-in user whatever
    their session (so opening more sessions buys no more)."""
    principal = current_principal()
    if isinstance(principal, SessionInfo):
        return f"user:{principal.user_id}"
    return f"key:{principal.id}"


ADMIN_SCOPE: Scope = "users:admin"


def restricted_to() -> int | None:
    """The caller's user id where they may change only what is theirs (a signed-in user
    without users:admin); None where the scopes alone decide (an API key, an admin)."""
    principal = current_principal()
    if isinstance(principal, SessionInfo) and ADMIN_SCOPE not in principal.scopes:
        return principal.user_id
    return None


def require_owner(owner_id: int) -> None:
    """Refuse (403) a signed-in user without users:admin acting on another user's own."""
    restricted = restricted_to()
    if restricted is not None and restricted != owner_id:
        raise ForbiddenError([], "You may change only your own user and your own posts.")


def require_admin() -> None:
    """Refuse (403) a caller without users:admin, API key or user."""
    if ADMIN_SCOPE not in current_principal().scopes:
        raise ForbiddenError([ADMIN_SCOPE])


def _authenticate(token: str) -> Principal | None:
    # Past its address's budget, a client's unverified tokens are refused unchecked.
    if sessions.is_access_token(token):
        return sessions.authenticate(token, rate_limits.address_has_budget)
    return api_keys.authenticate(token, rate_limits.address_has_budget)


def _is_public(endpoint: str, view: Any) -> bool:
    # Static files (the docs' assets) are public; every other view says so itself.
    return bool(getattr(view, "public", False)) or endpoint.rpartition(".")[2] == "static"


def _check(req: Request, view: Any) -> tuple[Principal | None, AppError | None, str]:
    """The request's key (if valid), the error refusing the request (if any) and its kind
    for the count: what authenticate_request records and may_send_body asks, side-free."""
    # From the environ, where a WSGI server puts the one Authorization it passes on:
    # request.headers.getlist() walked every header of the environ to find it, ~30 Python
    # calls a request (issue #39).
    header: str | None = req.environ.get("HTTP_AUTHORIZATION")
    if header is not None and "," in header:
        # Two credentials: a proxy that checks the first and we the last would disagree on
        # who is calling. A WSGI server joins repeated headers (RFC 9110 5.3) with a comma,
        # which neither a bearer token nor any token68 holds.
        refusal = "Send one Authorization header with one credential: Authorization: Bearer <key>."
        return None, BadRequestError(refusal), "malformed"
    scheme, _, token = (header or "").partition(" ")
    bearer = scheme.lower() == "bearer"
    key = _authenticate(token.strip()) if bearer else None
    if key is None:
        # Only an operator's count tells these apart; the client gets one answer for all.
        if header is None:
            kind = "missing"
        elif not bearer or not (
            api_keys.looks_like_token(token.strip()) or sessions.is_access_token(token.strip())
        ):
            kind = "malformed"
        else:
            kind = "rejected"
        refused = UnauthorizedError(
            "A valid API key or access token is required: Authorization: Bearer <token>."
        )
        return None, refused, kind
    missing = [s for s in getattr(view, "required_scopes", ()) if s not in key.scopes]
    if missing:
        return key, ForbiddenError(missing), "forbidden"
    return key, None, ""


def authenticate_request() -> None:
    """Check the bearer key and the view's scopes; runs before any body is read.

    A failure is kept, not raised, until enforce_authentication: the rate limit in between
    counts refused requests too (by address), so guessing keys is as slow as using one; and
    once the address is spent, a key not verified before is not even looked up.
    """
    # The request and g looked up once each: every use of a proxy looks its object up again.
    req: Request = current_request()
    endpoint = req.endpoint
    if req.routing_exception is not None or endpoint is None:
        return  # 404/405 whatever the credentials
    view = current_app.view_functions[endpoint]
    if _is_public(endpoint, view):
        return
    key, error, kind = _check(req, view)
    here = current_g()
    if isinstance(key, KeyInfo):
        here.principal = here.api_key = key
        req.environ["app.api_key"] = key.prefix  # for the access log
        api_keys.record_use(key)
    elif key is not None:
        here.principal = key
        req.environ["app.api_key"] = f"session:{key.id}"  # for the access log
        sessions.record_use(key)
    if error is not None:
        metrics.auth_failed(kind)
        here.auth_error = error


def may_send_body() -> bool:
    """Whether this request's route and credentials let it send a body; counts nothing.

    Asked by the server before it reads a large body (app.web.admission): a request it
    says no to is answered without its body, by the same hooks as any other.
    """
    req: Request = current_request()
    endpoint = req.endpoint
    if req.routing_exception is not None or endpoint is None:
        return False
    view = current_app.view_functions[endpoint]
    return _is_public(endpoint, view) or _check(req, view)[1] is None


def enforce_authentication() -> None:
    """Refuse the request authenticate_request found no valid key (or scopes) for."""
    error: AppError | None = g.pop("auth_error", None)
    if error is not None:
        raise error


def document_security(app: OpenAPI) -> None:
    """Declare each protected operation's bearer scopes in the OpenAPI document."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if _is_public(rule.endpoint, view):
            continue
        path = app.paths.get(parse_rule(rule.rule))
        if path is None:
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation = getattr(path, method.lower(), None)
            if operation is not None:
                scopes = list(getattr(view, "required_scopes", ()))
                operation.security = [{BEARER_SCHEME: scopes}]
