from typing import Literal

WebhookUpdateEventsItem = Literal[
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

WEBHOOK_UPDATE_EVENTS_ITEM_VALUES: set[WebhookUpdateEventsItem] = {
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


def check_webhook_update_events_item(value: str) -> WebhookUpdateEventsItem:
    if value in WEBHOOK_UPDATE_EVENTS_ITEM_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {WEBHOOK_UPDATE_EVENTS_ITEM_VALUES!r}")
