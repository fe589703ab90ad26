from typing import Literal

WebhookCreateEventsItem = Literal[
    "*",
    "api_key.created",
    "api_key.revoked",
    "group.created",
    "group.deleted",
    "group.member_added",
    "group.member_removed",
    "group.updated",
    "post.created",
    "post.deleted",
    "post.updated",
    "session.created",
    "session.revoked",
    "user.created",
    "user.deactivated",
    "user.deleted",
    "user.email_verified",
    "user.invited",
    "user.password_changed",
    "user.reactivated",
    "user.updated",
    "users.imported",
    "webhook.created",
    "webhook.deleted",
    "webhook.disabled",
    "webhook.secret_rotated",
    "webhook.updated",
]

WEBHOOK_CREATE_EVENTS_ITEM_VALUES: set[WebhookCreateEventsItem] = {
    "*",
    "api_key.created",
    "api_key.revoked",
    "group.created",
    "group.deleted",
    "group.member_added",
    "group.member_removed",
    "group.updated",
    "post.created",
    "post.deleted",
    "post.updated",
    "session.created",
    "session.revoked",
    "user.created",
    "user.deactivated",
    "user.deleted",
    "user.email_verified",
    "user.invited",
    "user.password_changed",
    "user.reactivated",
    "user.updated",
    "users.imported",
    "webhook.created",
    "webhook.deleted",
    "webhook.disabled",
    "webhook.secret_rotated",
    "webhook.updated",
}


def check_webhook_create_events_item(value: str) -> WebhookCreateEventsItem:
    if value in WEBHOOK_CREATE_EVENTS_ITEM_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {WEBHOOK_CREATE_EVENTS_ITEM_VALUES!r}")
