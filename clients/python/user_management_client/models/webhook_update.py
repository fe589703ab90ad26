from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.webhook_update_events_item import WebhookUpdateEventsItem, check_webhook_update_events_item
from ..types import UNSET, Unset

T = TypeVar("T", bound="WebhookUpdate")


@_attrs_define
class WebhookUpdate:
    """Body of PATCH /webhooks/{id}: omitted fields stay as they are. ``enabled: true``
    re-enables an endpoint the service disabled, clearing its reason and failure count.

        Attributes:
            description (str | Unset):
            enabled (bool | Unset):
            events (list[WebhookUpdateEventsItem] | Unset): The event types sent to it, or "*" for every type; repeats
                ignored.
            url (str | Unset): http:// or https://, no user name or password; it must resolve to public addresses only,
                unless WEBHOOK_ALLOWED_HOSTS names its host.
    """

    description: str | Unset = UNSET
    enabled: bool | Unset = UNSET
    events: list[WebhookUpdateEventsItem] | Unset = UNSET
    url: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        description = self.description

        enabled = self.enabled

        events: list[str] | Unset = UNSET
        if not isinstance(self.events, Unset):
            events = []
            for events_item_data in self.events:
                events_item: str = events_item_data
                events.append(events_item)

        url = self.url

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if description is not UNSET:
            field_dict["description"] = description
        if enabled is not UNSET:
            field_dict["enabled"] = enabled
        if events is not UNSET:
            field_dict["events"] = events
        if url is not UNSET:
            field_dict["url"] = url

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        description = d.pop("description", UNSET)

        enabled = d.pop("enabled", UNSET)

        _events = d.pop("events", UNSET)
        events: list[WebhookUpdateEventsItem] | Unset = UNSET
        if _events is not UNSET:
            events = []
            for events_item_data in _events:
                events_item = check_webhook_update_events_item(events_item_data)

                events.append(events_item)

        url = d.pop("url", UNSET)

        webhook_update = cls(
            description=description,
            enabled=enabled,
            events=events,
            url=url,
        )

        return webhook_update
