"""SCIM's errors for what scim2-models and pydantic refuse in a SCIM view.

Every other error under /scim/v2 is answered by the app's problem handler and rewritten into
SCIM's schema by the pipeline (app.web.problems.scim_errors), the pipeline's own 401, 404
and 405 included; scim2-models' exceptions carry their scimType here.
"""

from flask import Blueprint, Response
from pydantic import ValidationError
from scim2_models import SCIMException

from app.db.session import db
from app.web.problems import scim_error


def _scim_exception(error: SCIMException) -> Response:
    db.session.rollback()
    return scim_error(error.status, error.detail or "", error.scim_type)


def _validation_error(error: ValidationError) -> Response:
    # Never the values: a submitted password may be among them.
    db.session.rollback()
    problems = error.errors(include_input=False, include_url=False)
    said = sorted({f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in problems})
    # scim2-models names its own kinds (scim_invalidFilter, scim_invalidPath, ...).
    kinds = [
        str(e["type"]).removeprefix("scim_") for e in problems if e["type"].startswith("scim_")
    ]
    return scim_error(400, "; ".join(said), kinds[0] if kinds else "invalidValue")


def install(bp: Blueprint) -> None:
    """Answer what scim2-models and pydantic refuse in ``bp``'s views as SCIM errors."""
    bp.register_error_handler(SCIMException, _scim_exception)
    bp.register_error_handler(ValidationError, _validation_error)
