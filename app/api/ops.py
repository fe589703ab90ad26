"""Operations endpoints: liveness and readiness, public and cheap."""

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import json_response, operation_id_for, problems
from app.config import current_settings
from app.db import asyncpg_pool
from app.db.failures import DATABASE_ERRORS
from app.db.migrations import SCHEMA_REVISION, release
from app.db.session import autocommit, db, run_db
from app.errors import ServiceUnavailableError
from app.schemas.common import OutputModel
from app.telemetry import metrics
from app.web.auth import public

bp = APIBlueprint(
    "ops", __name__, abp_tags=[Tag(name="operations")], operation_id_callback=operation_id_for
)


class Status(OutputModel):
    """Health or readiness."""

    status: str


def _schema_revision() -> str | None:
    return db.session.execute(SCHEMA_REVISION).scalar_one_or_none()


async def _schema_revision_async() -> str | None:
    rows = await asyncpg_pool.fetch(SCHEMA_REVISION)
    return str(rows[0][0]) if rows else None


@bp.get("/healthz", responses={200: Status})
@public
async def get_health() -> Response:
    """Say the process serves; touches no database."""
    return json_response(Status(status="ok"))


@bp.get(
    "/metrics",
    responses={
        200: {
            "description": "Prometheus' text format (README, 'Operating it'); public: restrict "
            "it at the proxy.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
@public
async def get_metrics() -> Response:
    """Serve the metrics of every worker process, for Prometheus to scrape."""
    return metrics.render()


@bp.get("/readyz", responses={200: Status, **problems(503)})
@public
async def get_readiness() -> Response:
    """Say whether the database answers and its schema is this release's (or a newer one's)."""
    try:
        if current_settings().backend == "postgresql":
            revision = await _schema_revision_async()
        else:
            async with autocommit():
                revision = await run_db(_schema_revision)
    except DATABASE_ERRORS as exc:
        # Whatever went wrong, this replica cannot serve: take it out of the balancer.
        raise ServiceUnavailableError("The database is unavailable.") from exc
    if not release().serves(revision):
        raise ServiceUnavailableError("The database schema is behind this release's migrations.")
    return json_response(Status(status="ready"))
