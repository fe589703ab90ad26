from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.webhook_create_events_item import WebhookCreateEventsItem, check_webhook_create_events_item
from ..types import UNSET, Unset

T = TypeVar("T", bound="WebhookCreate")


@_attrs_define
class WebhookCreate:
    """Body of POST /webhooks.

    Attributes:
        events (list[WebhookCreateEventsItem]): The event types sent to it, or "*" for every type; repeats ignored.
        url (str): http:// or https://, no user name or password; it must resolve to public addresses only, unless
            WEBHOOK_ALLOWED_HOSTS names its host.
        description (str | Unset):
    """

    events: list[WebhookCreateEventsItem]
    url: str
    description: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        events = []
        for events_item_data in self.events:
            events_item: str = events_item_data
            events.append(events_item)

        url = self.url

        description = self.description

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "events": events,
                "url": url,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        events = []
        _events = d.pop("events")
        for events_item_data in _events:
            events_item = check_webhook_create_events_item(events_item_data)

            events.append(events_item)

        url = d.pop("url")

        description = d.pop("description", UNSET)

        webhook_create = cls(
            events=events,
            url=url,
            description=description,
        )

        return webhook_create
