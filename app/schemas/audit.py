"""Response bodies and parameters of the audit log (GET /audit-events)."""

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field, field_validator

from app.schemas.common import OutputModel, Page, PageQuery, ParameterModel

ActorKind = Literal["api_key", "user", "cli", "anonymous", "system"]
# What an event's type and resource type are made of; ids (a key's prefix, a row's id).
_NAME = r"^[a-z_.]+$"
_ID = r"^[A-Za-z0-9_-]+$"
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


class AuditActor(OutputModel):
    """Who made the change: an API key (its prefix and name), a user (their id, and the
    session), the command line (the operating system's user name), or the system itself (the
    worker disabling a webhook endpoint its receiver gave up on)."""

    kind: ActorKind
    id: str | None
    label: str | None


class AuditResource(OutputModel):
    """What was changed: a type and its id (none for an import, which changes many)."""

    type: str
    id: str | None


class AuditEventRead(OutputModel):
    """One change event, as recorded in the change's own transaction."""

    id: int
    occurred_at: datetime
    type: str = Field(description="<resource>.<verb>, such as user.created.")
    actor: AuditActor
    resource: AuditResource
    changes: dict[str, Any] = Field(
        description="Each changed field as [before, after]; secrets never appear."
    )
    request_id: str | None
    seq: int | None = Field(description="Place in the hash chain; null until sealed.")
    hash: str | None = Field(description="SHA-256 over the event and its predecessor's hash.")


class AuditEventPage(Page[AuditEventRead]):
    """A page of change events."""


class AuditFilters(ParameterModel):
    """The filters of the audit log: every one given must hold."""

    type: str | None = Field(default=None, pattern=_NAME, max_length=40)
    resource_type: str | None = Field(default=None, pattern=_NAME, max_length=32)
    resource_id: str | None = Field(default=None, pattern=_ID, max_length=64)
    actor_kind: ActorKind | None = None
    actor_id: str | None = Field(default=None, pattern=_ID, max_length=64)
    since: AwareDatetime | None = Field(default=None, description="occurred_at at or after.")
    until: AwareDatetime | None = Field(default=None, description="occurred_at before.")

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> object:
        # As the document says (date-time): not a number of seconds, which pydantic would take.
        if isinstance(value, str) and not _DATE_TIME.match(value):
            msg = "an ISO 8601 date and time with an offset, such as 2026-12-07T05:00:00Z"
            raise ValueError(msg)
        return value

    @field_validator("since", "until")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        # Compared in UTC on every backend; a time whose UTC falls outside the calendar (year
        # 1 at +23:59) is the client's mistake, not an overflow in the driver.
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            msg = "outside the years 1 to 9999 in UTC"
            raise ValueError(msg) from None


class AuditEventQuery(AuditFilters, PageQuery):
    """Query string of GET /audit-events."""

    sort: Literal["id", "-id"] = Field(default="-id", description="-id: newest first.")


class AuditExportQuery(AuditFilters):
    """Query string of GET /audit-events/export: the same filters, in id order, no paging."""
