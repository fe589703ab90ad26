from typing import Literal

GroupCreateScopesItem = Literal[
    "audit:read", "posts:read", "posts:write", "scim", "users:admin", "users:read", "users:write", "webhooks:admin"
]

GROUP_CREATE_SCOPES_ITEM_VALUES: set[GroupCreateScopesItem] = {
    "audit:read",
    "posts:read",
    "posts:write",
    "scim",
    "users:admin",
    "users:read",
    "users:write",
    "webhooks:admin",
}


def check_group_create_scopes_item(value: str) -> GroupCreateScopesItem:
    if value in GROUP_CREATE_SCOPES_ITEM_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {GROUP_CREATE_SCOPES_ITEM_VALUES!r}")
