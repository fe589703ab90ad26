"""Operations endpoints: liveness and readiness, public and cheap."""

import logging
from dataclasses import dataclass

from flask import Response, current_app
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import json_response, operation_id_for
from app.config import current_settings
from app.db import asyncpg_pool
from app.db.failures import DATABASE_ERRORS, database_error_kind
from app.db.migrations import SCHEMA_REVISION, release
from app.db.session import autocommit, db, run_db
from app.errors import NotReadyError
from app.schemas.common import NotReadyProblem, OutputModel
from app.telemetry import metrics
from app.web.auth import public

log = logging.getLogger(__name__)
_NOT_MIGRATED = "The database has no schema yet. Apply the migrations: alembic upgrade head."

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
            "description": "Prometheus' text format (docs/how-to/operating.md, 'Metrics'); "
            "public: restrict it at the proxy.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
@public
async def get_metrics() -> Response:
    """Serve the metrics of every worker process, for Prometheus to scrape."""
    return metrics.render()


@dataclass(frozen=True)
class _Readiness:
    reason: str | None  # None: ready
    detail: str


# The last answer this app gave (in app.extensions), so that each change is logged once,
# not at every probe.
_LAST_READINESS = "last_readiness"


def _answered(state: _Readiness, cause: str = "") -> None:
    last: list[_Readiness] = current_app.extensions.setdefault(_LAST_READINESS, [])
    if last and last[0] == state:
        return
    if state.reason is None:
        if last:
            log.info("ready: the database answers at this release's schema")
    else:
        log.warning("not ready (%s): %s%s", state.reason, state.detail, cause)
    last[:] = [state]


def _database_answered(error: BaseException) -> bool:
    """Whether the database answered, with an error (no alembic_version table), rather than
    not at all: a second call to find out would wait out the deadline again."""
    if database_error_kind(error) == "fault":  # a SQLSTATE or error number of a statement
        return True
    return "no such table" in str(getattr(error, "orig", error))  # SQLite's, without a state


def _not_ready(reason: str, detail: str, cause: str = "") -> NotReadyError:
    state = _Readiness(reason, detail)
    _answered(state, cause)
    return NotReadyError(reason, detail)


@bp.get("/readyz", responses={200: Status, 503: NotReadyProblem})
@public
async def get_readiness() -> Response:
    """Say whether the database answers and its schema is this release's (or a newer one's);
    where not, ``reason`` says why: unreachable, not_migrated or behind."""
    try:
        if current_settings().backend == "postgresql":
            revision = await _schema_revision_async()
        else:
            async with autocommit():
                revision = await run_db(_schema_revision)
    except DATABASE_ERRORS as exc:
        # Reading the revision failed: a database that answered with an error has no
        # alembic_version table (never migrated); one that did not answer is out of reach.
        cause = f" ({type(exc).__name__})"
        if _database_answered(exc):
            raise _not_ready("not_migrated", _NOT_MIGRATED, cause) from exc
        raise _not_ready("unreachable", "The database cannot be reached.", cause) from exc
    this = release()
    if revision is None:
        raise _not_ready("not_migrated", _NOT_MIGRATED)
    if not this.serves(revision):
        detail = f"The database schema is at {revision}, behind this release's {this.head}."
        raise _not_ready("behind", detail + " Apply the migrations: alembic upgrade head.")
    _answered(_Readiness(None, "ready"))
    return json_response(Status(status="ready"))
