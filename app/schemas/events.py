"""The change events' types: the one list the contract, webhook subscriptions and the
OpenAPI document's ``webhooks`` section are held to."""

from typing import Final, Literal, get_args

# <resource>.<verb>; tests/api/test_webhooks.py holds it to the contract's list and to every
# type a service records.
EventType = Literal[
    "user.created",
    "user.updated",
    "user.deleted",
    "user.deactivated",
    "user.reactivated",
    "user.password_changed",
    # Mail (app/services/mail_flows.py): an invitation sent, a new address confirmed.
    "user.invited",
    "user.email_verified",
    "users.imported",
    "post.created",
    "post.updated",
    "post.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.member_added",
    "group.member_removed",
    "api_key.created",
    "api_key.revoked",
    "session.created",
    "session.revoked",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.secret_rotated",
    # Recorded by the worker when it disables an endpoint (a 410, or failures in a row).
    "webhook.disabled",
]
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)
# A subscription to every type, present and future.
EVERY_TYPE: Final = "*"
