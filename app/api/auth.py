"""Who is calling: the key behind the request."""

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import json_response, operation_id_for
from app.schemas.common import OutputModel
from app.web.auth import current_key, requires

bp = APIBlueprint(
    "auth",
    __name__,
    url_prefix="/auth",
    abp_tags=[Tag(name="auth")],
    operation_id_callback=operation_id_for,
)


class WhoAmI(OutputModel):
    """The calling API key (never its secret)."""

    name: str
    prefix: str
    scopes: list[str]


@bp.get("/whoami", responses={200: WhoAmI})
@requires()
async def get_whoami() -> Response:
    """Describe the API key that made this request."""
    return json_response(WhoAmI.model_validate(current_key()))
