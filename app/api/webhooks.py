"""HTTP views of webhook endpoints and their deliveries, managed with the webhooks:admin scope.

A URL is checked (public addresses only, unless WEBHOOK_ALLOWED_HOSTS) before the unit of
work opens: resolving a name holds no connection. The worker delivers (app/worker/).
"""

from flask import url_for
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from app.api.common import item_response, operation_id_for, page_response, problems
from app.db.session import autocommit, run_db, transaction
from app.schemas.webhooks import (
    DeliveryListQuery,
    DeliveryPage,
    DeliveryPath,
    WebhookCreate,
    WebhookListQuery,
    WebhookPage,
    WebhookPath,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from app.services import webhooks
from app.web.auth import requires
from app.web.bodies import no_body
from app.web.responses import Response

bp = APIBlueprint(
    "webhooks",
    __name__,
    url_prefix="/webhooks",
    abp_tags=[Tag(name="webhooks")],
    operation_id_callback=operation_id_for,
)


@bp.post("", responses={201: WebhookWithSecret, **problems(400, 413, 415, 422)})
@requires("webhooks:admin")
async def create_webhook(body: WebhookCreate) -> Response:
    """Register an endpoint; the answer shows its signing secret, this once."""
    await webhooks.check_url(body.url)
    async with transaction():
        row, secret = await run_db(webhooks.create_webhook, body)
    location = url_for("webhooks.get_webhook", webhook_id=row.id)
    return item_response(webhooks.webhook_item(row, secret), 201, {"Location": location})


@bp.get("", responses={200: WebhookPage, **problems(400)})
@requires("webhooks:admin")
async def list_webhooks(query: WebhookListQuery) -> Response:
    """List endpoints by id, one keyset page at a time."""
    async with autocommit():
        rows, cursor = await run_db(webhooks.list_webhooks, query)
    return page_response(map(webhooks.webhook_item, rows), cursor)


@bp.get("/<id:webhook_id>", responses={200: WebhookRead, **problems(404)})
@requires("webhooks:admin")
async def get_webhook(path: WebhookPath) -> Response:
    """Get one endpoint (never its secret)."""
    async with autocommit():
        row = await run_db(webhooks.get_webhook, path.webhook_id)
    return item_response(webhooks.webhook_item(row))


@bp.patch("/<id:webhook_id>", responses={200: WebhookRead, **problems(400, 404, 413, 415, 422)})
@requires("webhooks:admin")
async def update_webhook(path: WebhookPath, body: WebhookUpdate) -> Response:
    """Change an endpoint's URL, event types, description, or whether it is enabled."""
    if body.url is not None:
        await webhooks.check_url(body.url)
    async with transaction():
        row = await run_db(webhooks.update_webhook, path.webhook_id, body)
    return item_response(webhooks.webhook_item(row))


@bp.delete("/<id:webhook_id>", responses={204: None, **problems(404)})
@requires("webhooks:admin")
async def delete_webhook(path: WebhookPath) -> Response:
    """Delete an endpoint with its deliveries; nothing more is sent to it."""
    async with transaction():
        await run_db(webhooks.delete_webhook, path.webhook_id)
    return Response(status=204)


@bp.post("/<id:webhook_id>/secret", responses={200: WebhookWithSecret, **problems(400, 404)})
@requires("webhooks:admin")
@no_body
async def rotate_webhook_secret(path: WebhookPath) -> Response:
    """Give an endpoint a new secret, shown this once; the old one still signs for a while.

    Deliveries carry both signatures for WEBHOOK_SECRET_OVERLAP hours (24 by default).
    """
    async with transaction():
        row, secret = await run_db(webhooks.rotate_secret, path.webhook_id)
    return item_response(webhooks.webhook_item(row, secret))


@bp.get("/<id:webhook_id>/deliveries", responses={200: DeliveryPage, **problems(400, 404)})
@requires("webhooks:admin")
async def list_webhook_deliveries(path: WebhookPath, query: DeliveryListQuery) -> Response:
    """List an endpoint's deliveries, newest first, each with its attempts."""
    async with autocommit():
        items, cursor = await run_db(webhooks.list_deliveries, path.webhook_id, query)
    return page_response(items, cursor)


@bp.post(
    "/<id:webhook_id>/deliveries/<id:delivery_id>/retry",
    responses={202: None, **problems(400, 404)},
)
@requires("webhooks:admin")
@no_body
async def retry_webhook_delivery(path: DeliveryPath) -> Response:
    """Send a delivery again (pending, due now), whatever its state, with the same webhook-id."""
    async with autocommit():
        await run_db(webhooks.retry_delivery, path.webhook_id, path.delivery_id)
    return Response(status=202)
