"""What every API view shares: JSON bodies in, typed JSON out, operation ids, problem docs."""

import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, request
from flask_openapi3.types import ResponseDict
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from app.errors import (
    BadRequestError,
    UnprocessableError,
    UnsupportedMediaTypeError,
    validation_errors,
)
from app.schemas.common import PARAMETER_MODELS, Problem

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
F = TypeVar("F", bound=Callable[..., Any])


class IdConverter(IntegerConverter):
    """A positive id; anything else matches no route and so is simply not found.

    The bound lives in the pattern, not in ``min``/``max``: werkzeug answers 405 instead of
    404 when a converter rejects a value that another method's rule would take.
    """

    # Up to 18 digits: below 2**63, so every driver binds it; absent ids are then 404s.
    regex = r"[1-9]\d{0,17}"


def operation_id_for(*, name: str, **_: Any) -> str:
    """Name an operation after its view: ``create_user`` becomes ``createUser``."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or bool(
        re.fullmatch(r"application/[\w.-]+\+json", mimetype)
    )


def streamed_body(view: F) -> F:
    """Mark a view that reads its own (streamed, unbounded) body instead of a JSON object."""
    view.streams_body = True  # type: ignore[attr-defined]
    return view


def require_json_body() -> None:
    """Reject a write whose body is not a JSON object before any view code runs."""
    if request.method not in _BODY_METHODS or request.routing_exception is not None:
        return
    view = current_app.view_functions[request.endpoint or ""]
    if getattr(view, "streams_body", False):
        # No size limit either: the view reads the stream in chunks. (None would mean
        # "the app's MAX_CONTENT_LENGTH" to Flask.)
        request.max_content_length = sys.maxsize
        return
    if not _is_json(request.mimetype):
        raise UnsupportedMediaTypeError("The body must be JSON (Content-Type: application/json).")
    try:
        body = request.get_json()
    except BadRequest as exc:
        raise BadRequestError("The body is not well-formed JSON.") from exc
    if not isinstance(body, dict):
        raise UnprocessableError(
            "The body must be a JSON object.",
            errors=[{"loc": ["body"], "msg": "Input should be an object", "type": "model_type"}],
        )


def raise_validation_error(error: ValidationError) -> None:
    """Report a failed pydantic check: 400 for parameters, 422 for bodies; no values echoed."""
    location = PARAMETER_MODELS.get(error.title)
    if location is not None:
        raise BadRequestError(
            f"Invalid {location} parameters.", errors=validation_errors(error, location)
        )
    raise UnprocessableError("The body failed validation.", errors=validation_errors(error, "body"))


def json_response(
    model: BaseModel, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Serialise a response model straight to JSON bytes."""
    return Response(
        model.model_dump_json(), status=status, headers=headers, mimetype="application/json"
    )


def problems(*statuses: int) -> ResponseDict:
    """Document error responses as problem+json for the OpenAPI layer."""
    return dict.fromkeys(statuses, Problem)
