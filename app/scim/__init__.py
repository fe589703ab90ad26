"""SCIM 2.0 for identity providers: a protocol adapter onto the users and groups services,
with its own content type, errors and filter language (app.scim.views says what it serves)."""

from app.scim import bulk, groups, users
from app.scim.views import bp

__all__ = ["bp", "bulk", "groups", "users"]
