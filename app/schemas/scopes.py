"""The scopes an API key or a group grants."""

from typing import Final, Literal, get_args

Scope = Literal[
    "users:read",
    "users:write",
    "posts:read",
    "posts:write",
    # Managing users' accounts and groups, and what the later issues' endpoints need.
    "users:admin",
    "audit:read",
    "webhooks:admin",
    "scim",
]
ALL_SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)
