"""Operations endpoints: liveness and readiness, public and cheap."""

from flask import Response, current_app
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app import pg
from app.aio import run_autocommit
from app.api.common import json_response, operation_id_for, problems
from app.auth import public
from app.errors import DATABASE_ERRORS, ServiceUnavailableError
from app.extensions import db
from app.migrations import SCHEMA_REVISION, schema_serves
from app.schemas.common import OutputModel

bp = APIBlueprint(
    "ops", __name__, abp_tags=[Tag(name="operations")], operation_id_callback=operation_id_for
)


class Status(OutputModel):
    """Health or readiness."""

    status: str


def _schema_revision() -> str | None:
    return db.session.execute(SCHEMA_REVISION).scalar_one_or_none()


async def _schema_revision_async() -> str | None:
    rows = await pg.fetch(SCHEMA_REVISION)
    return str(rows[0][0]) if rows else None


@bp.get("/healthz", responses={200: Status})
@public
async def get_health() -> Response:
    """Say the process serves; touches no database."""
    return json_response(Status(status="ok"))


@bp.get("/readyz", responses={200: Status, **problems(503)})
@public
async def get_readiness() -> Response:
    """Say whether the database answers and its schema is this release's (or a newer one's)."""
    try:
        if current_app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            revision = await _schema_revision_async()
        else:
            revision = await run_autocommit(_schema_revision)
    except DATABASE_ERRORS as exc:
        # Whatever went wrong, this replica cannot serve: take it out of the balancer.
        raise ServiceUnavailableError("The database is unavailable.") from exc
    config = current_app.config
    if not schema_serves(revision, config["ALEMBIC_HEAD"], config["ALEMBIC_REVISIONS"]):
        raise ServiceUnavailableError("The database schema is behind this release's migrations.")
    return json_response(Status(status="ready"))
