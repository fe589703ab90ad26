from typing import Literal

GroupUpdateScopesItem = Literal[
    "audit:read", "posts:read", "posts:write", "scim", "users:admin", "users:read", "users:write", "webhooks:admin"
]

GROUP_UPDATE_SCOPES_ITEM_VALUES: set[GroupUpdateScopesItem] = {
    "audit:read",
    "posts:read",
    "posts:write",
    "scim",
    "users:admin",
    "users:read",
    "users:write",
    "webhooks:admin",
}


def check_group_update_scopes_item(value: str) -> GroupUpdateScopesItem:
    if value in GROUP_UPDATE_SCOPES_ITEM_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {GROUP_UPDATE_SCOPES_ITEM_VALUES!r}")
