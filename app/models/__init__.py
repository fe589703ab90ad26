"""All models, so one import registers every table on the metadata."""

from app.models.api_key import ApiKey
from app.models.audit_event import AuditChain, AuditEvent
from app.models.group import Group, GroupMember
from app.models.idempotency import IdempotencyKey
from app.models.mail import MailMessage, MailToken
from app.models.post import Post
from app.models.user import User
from app.models.user_session import SpentRefreshToken, UserSession
from app.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditChain",
    "AuditEvent",
    "Group",
    "GroupMember",
    "IdempotencyKey",
    "MailMessage",
    "MailToken",
    "Post",
    "SpentRefreshToken",
    "User",
    "UserSession",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
