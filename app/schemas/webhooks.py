"""Request and response bodies and parameters of webhooks, and the payload they deliver."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator

from app.models.webhook import DESCRIPTION_MAX, URL_MAX
from app.schemas.audit import AuditEventRead
from app.schemas.common import (
    TEXT_PATTERN,
    InputModel,
    OutputModel,
    Page,
    PageQuery,
    ParameterModel,
    PartialUpdate,
)
from app.schemas.events import EventType

Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=URL_MAX,
        json_schema_extra={"format": "uri"},
        description="http:// or https://, no user name or password; it must resolve to public "
        "addresses only, unless WEBHOOK_ALLOWED_HOSTS names its host.",
    ),
]
# One enum, "*" among the types: a union of two made generated clients write two types.
Subscription = Literal[EventType, "*"]
Events = Annotated[
    list[Subscription],
    Field(
        min_length=1,
        max_length=100,
        description='The event types sent to it, or "*" for every type; repeats ignored.',
    ),
]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX, pattern=TEXT_PATTERN)]
# app.models.outbox.STATES, spelled out for the document (a test holds them equal).
DeliveryState = Literal["pending", "sent", "failed"]


class WebhookCreate(InputModel):
    """Body of POST /webhooks."""

    EXAMPLES = (
        {
            "url": "https://hooks.example.com/user-api",
            "events": ["user.created", "user.deleted"],
            "description": "CRM sync",
        },
    )

    url: Url
    events: Events
    description: Description | None = None


class WebhookUpdate(PartialUpdate):
    """Body of PATCH /webhooks/{id}: omitted fields stay as they are. ``enabled: true``
    re-enables an endpoint the service disabled, clearing its reason and failure count."""

    EXAMPLES = ({"enabled": True},)

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: bool | None = None


class WebhookRead(OutputModel):
    """A webhook endpoint as the API returns it; its secret is never shown again."""

    id: int
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the service disabled it (a 410, or failures in a row); null when "
        "enabled, or disabled by hand."
    )
    failures_in_row: int = Field(description="Deliveries that failed since the last success.")
    rotating: bool = Field(
        description="Whether a secret rotation's overlap is in effect: deliveries are signed "
        "with the previous secret too, until previous_secret_until."
    )
    previous_secret_until: datetime | None = Field(
        description="When the previous secret stops signing; null when rotating is false."
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookRead):
    """A webhook endpoint with its signing secret: shown once, when made or rotated."""

    secret: str = Field(
        description="whsec_ and the base64 of 32 random bytes (Standard Webhooks): keep it, "
        "it is not shown again."
    )


class WebhookPage(Page[WebhookRead]):
    """A page of webhook endpoints."""


class WebhookListQuery(PageQuery):
    """Query string of GET /webhooks (by id)."""


class WebhookPath(ParameterModel):
    """Path of /webhooks/{webhook_id}."""

    location = "path"
    webhook_id: int = Field(ge=1)


class DeliveryPath(ParameterModel):
    """Path of /webhooks/{webhook_id}/deliveries/{delivery_id}."""

    location = "path"
    webhook_id: int = Field(ge=1)
    delivery_id: int = Field(ge=1)


class DeliveryListQuery(PageQuery):
    """Query string of GET /webhooks/{webhook_id}/deliveries (newest first)."""

    state: DeliveryState | None = Field(default=None, description="Only deliveries in it.")


class AttemptRead(OutputModel):
    """One attempt of a delivery: what the receiver answered, and how long it took."""

    id: int
    started_at: datetime
    duration_ms: int
    status_code: int | None = Field(description="null when no answer came.")
    error: str | None
    response_excerpt: str | None = Field(description="The answer's first 1,024 characters.")


class DeliveryRead(OutputModel):
    """One event's delivery to an endpoint, with its attempts, oldest first."""

    id: int
    event_id: int = Field(description="The webhook-id header of every attempt.")
    event_type: str
    state: DeliveryState = Field(
        description="pending (waiting for its next attempt), sent, or failed (given up)."
    )
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    history: list[AttemptRead]


class DeliveryPage(Page[DeliveryRead]):
    """A page of deliveries."""


class WebhookPayload(OutputModel):
    """What a delivery POSTs: the event as GET /audit-events returns it, with its type and
    time at the top (Standard Webhooks' payload structure)."""

    type: EventType
    timestamp: datetime = Field(description="The event's occurred_at, in UTC.")
    data: AuditEventRead

    @field_validator("timestamp")
    @classmethod
    def _in_utc(cls, moment: datetime) -> datetime:
        # RFC 3339 in UTC ("...Z") whatever offset the row came with.
        return moment.astimezone(UTC)
