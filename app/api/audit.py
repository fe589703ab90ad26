"""HTTP views of the audit log: change events, read-only (audit:read)."""

from flask import stream_with_context
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import operation_id_for, page_response, problems
from app.config import current_settings
from app.db.session import autocommit, run_db
from app.schemas.audit import AuditEventPage, AuditEventQuery, AuditExportQuery
from app.services import audit, bulk, events
from app.web.auth import current_caller, requires
from app.web.responses import Response
from app.web.slots import giving_back, slots_for

bp = APIBlueprint(
    "audit",
    __name__,
    url_prefix="/audit-events",
    abp_tags=[Tag(name="audit")],
    operation_id_callback=operation_id_for,
)


@bp.get("", responses={200: AuditEventPage, **problems(400)})
@requires("audit:read")
async def list_audit_events(query: AuditEventQuery) -> Response:
    """List change events, newest first (or oldest: sort=id), one keyset page at a time."""
    async with autocommit():
        items, cursor = await run_db(audit.list_events, query)
    return page_response(map(events.event_item, items), cursor)


@bp.get(
    "/export",
    responses={
        200: {
            "description": "Every event the filters keep, one JSON object a line, in id order.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        },
        **problems(400),
    },
)
@requires("audit:read")
async def export_audit_events(query: AuditExportQuery) -> Response:
    """Export change events as NDJSON, streamed in constant memory."""
    settings = current_settings()
    # The users export's machinery: a slot per process and per caller, the connection
    # checked here (a 503 problem now, not mid-stream), a server-side cursor after.
    slots = slots_for("exports", settings.EXPORTS_PER_PROCESS, settings.EXPORTS_PER_KEY)
    slot = slots.take(current_caller())
    try:
        async with autocommit():
            await run_db(bulk.database_answers)
    except BaseException:
        slot.give_back()
        raise
    lines = stream_with_context(giving_back(audit.export_events(query), slot))
    response = Response(lines, mimetype="application/x-ndjson")
    response.call_on_close(slot.give_back)
    return response
