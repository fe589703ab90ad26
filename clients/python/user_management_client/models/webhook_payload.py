from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.webhook_payload_type import WebhookPayloadType, check_webhook_payload_type

if TYPE_CHECKING:
    from ..models.audit_event_read import AuditEventRead


T = TypeVar("T", bound="WebhookPayload")


@_attrs_define
class WebhookPayload:
    """What a delivery POSTs: the event as GET /audit-events returns it, with its type and
    time at the top (Standard Webhooks' payload structure).

        Attributes:
            data (AuditEventRead): One change event, as recorded in the change's own transaction.
            timestamp (datetime.datetime): The event's occurred_at, in UTC.
            type_ (WebhookPayloadType):
    """

    data: AuditEventRead
    timestamp: datetime.datetime
    type_: WebhookPayloadType
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = self.data.to_dict()

        timestamp = self.timestamp.isoformat()

        type_: str = self.type_

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "data": data,
                "timestamp": timestamp,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.audit_event_read import AuditEventRead  # noqa: PLC0415

        d = dict(src_dict)
        data = AuditEventRead.from_dict(d.pop("data"))

        timestamp = datetime.datetime.fromisoformat(d.pop("timestamp"))

        type_ = check_webhook_payload_type(d.pop("type"))

        webhook_payload = cls(
            data=data,
            timestamp=timestamp,
            type_=type_,
        )

        webhook_payload.additional_properties = d
        return webhook_payload

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
